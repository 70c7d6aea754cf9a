"""Import a script of ``tools/`` (not a package) as a module, for tests and
for tools that reuse another tool's functions."""
import importlib.util
import sys
from pathlib import Path

TOOLS_DIR = Path(__file__).resolve().parents[2] / 'tools'


def load_tool(relative_path):
    """Import the script ``tools/<relative_path>`` as a module.

    tools/ is not a package; the script runs as ``python tools/...`` would
    run it: its own folder is first on ``sys.path`` while it executes, so
    its imports of sibling scripts resolve. The module is named
    ``s5_mm_tools.<path>`` so that e.g. ``test.py`` does not shadow the
    standard library's ``test`` package.
    """
    path = TOOLS_DIR / relative_path
    if not path.is_file():
        raise FileNotFoundError(f'no tool script {path}')
    name = 's5_mm_tools.' + '.'.join(Path(relative_path).with_suffix('').parts)
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    folder = str(path.parent)
    sys.modules[name] = module
    before = set(sys.modules)
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    finally:
        sys.path.remove(folder)
        _forget_sibling_imports(before)
    return module


def _forget_sibling_imports(before):
    # Sibling scripts imported by plain name (e.g. ``_common`` in both
    # model_converters/ and dataset_converters/) must not stay cached under
    # that name, or the next tool of another folder would get the wrong one.
    for mod_name in set(sys.modules) - before:
        if mod_name.startswith('s5_mm_tools.'):
            continue
        file = getattr(sys.modules[mod_name], '__file__', None) or ''
        if Path(file).resolve().is_relative_to(TOOLS_DIR):
            del sys.modules[mod_name]
