#!/usr/bin/env bash
# Installs Loopitis with its test tools into .venv, then runs every check:
# formatting, lint, strict typing and the whole test suite on real servers.
# Extra arguments go to pytest.
source "$(dirname "$0")/_venv.sh" test
echo "== ruff format --check"; .venv/bin/ruff format --check .
echo "== ruff check"; .venv/bin/ruff check .
echo "== mypy (strict)"; .venv/bin/mypy
echo "== pytest"; .venv/bin/pytest "$@"
