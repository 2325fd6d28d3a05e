#!/usr/bin/env bash
# Installs Loopitis with its test tools into .venv, then runs every check:
# formatting, lint, strict typing and the whole test suite on real servers.
# Extra arguments go to pytest.
source "$(dirname "$0")/_venv.sh" test
# The dashboard tests drive Debian's Chromium; install it when we can (root
# with apt-get). Without it those tests skip and say why.
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "== installing chromium for the browser tests"
  { apt-get update -qq && apt-get install -y -qq chromium; } >/dev/null 2>&1 \
    || echo "   chromium could not be installed; the browser tests will skip"
fi
echo "== ruff format --check"; .venv/bin/ruff format --check .
echo "== ruff check"; .venv/bin/ruff check .
echo "== mypy (strict)"; .venv/bin/mypy
echo "== pytest"; .venv/bin/pytest "$@"
