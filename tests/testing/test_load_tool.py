"""s5_mm.testing.load_tool: tool scripts import their siblings by plain name;
two folders with a sibling of the same name (``_common``) must not mix."""
import inspect
import sys

from s5_mm.testing import load_tool


def test_siblings_of_the_same_name_do_not_leak_between_folders():
    datasets = load_tool('dataset_converters/isaid.py')
    assert '_common' not in sys.modules
    models = load_tool('model_converters/mae2s5mm.py')
    assert '_common' not in sys.modules
    # each script got its own folder's _common
    assert inspect.getfile(models.save_conversion).endswith(
        'model_converters/_common.py')
    assert inspect.getfile(datasets.colour_to_ids).endswith(
        'dataset_converters/_common.py')


def test_loaded_once_and_named_apart_from_stdlib():
    tool = load_tool('test.py')
    assert tool.__name__ == 's5_mm_tools.test'
    assert load_tool('test.py') is tool
    assert 'test' not in sys.modules or not sys.modules['test'].__file__ \
        .endswith('tools/test.py')
