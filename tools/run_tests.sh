#!/usr/bin/env bash
# The project's test command (what CI runs): the whole suite on 2 workers.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
exec "${PY:-$ROOT/.venv/bin/python}" -m pytest tests -n "${PYTEST_WORKERS:-2}" "$@"
