# Sourced by the launchers (DIR = this folder): the python that runs the
# tools. $PYTHON when set, else the checkout's .venv that tools/setup_env.sh
# makes, else `python` on PATH (an activated environment, a cluster module).
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$DIR/../.venv/bin/python" ]; then
    PYTHON="$DIR/../.venv/bin/python"
  else
    PYTHON=python
  fi
fi
