"""The launchers run the checkout's .venv python without PYTHON= or an
activated environment (issue 24, item 3)."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

LAUNCHERS = ('dist_train.sh', 'dist_test.sh', 'slurm_train.sh',
             'slurm_test.sh')


def _picked(tools_dir, env_python=None):
    env = {'PATH': os.environ['PATH']}
    if env_python is not None:
        env['PYTHON'] = env_python
    out = subprocess.run(
        ['bash', '-c', f'DIR={tools_dir}; source "$DIR/_python.sh"; '
         'echo "$PYTHON"'], env=env, capture_output=True, text=True,
        check=True)
    return out.stdout.strip()


def test_python_picker_order(tmp_path, repo_root):
    tools = tmp_path / 'checkout' / 'tools'
    tools.mkdir(parents=True)
    shutil.copy(repo_root / 'tools' / '_python.sh', tools)
    assert _picked(tools) == 'python'  # no .venv: the PATH's python
    venv_py = tmp_path / 'checkout' / '.venv' / 'bin' / 'python'
    venv_py.parent.mkdir(parents=True)
    venv_py.write_text('#!/bin/sh\n')
    venv_py.chmod(0o755)
    assert Path(_picked(tools)).resolve() == venv_py.resolve()
    assert _picked(tools, '/opt/py/bin/python3') == '/opt/py/bin/python3'


@pytest.mark.parametrize('launcher', LAUNCHERS)
def test_every_launcher_uses_the_picker(repo_root, launcher):
    text = (repo_root / 'tools' / launcher).read_text()
    assert 'source "$DIR/_python.sh"' in text
    assert 'PYTHON:-python' not in text
