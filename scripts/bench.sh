#!/usr/bin/env bash
# Installs Loopitis with the benchmark tools into .venv, then runs the
# benchmark suite on embedded servers (about 8 minutes) and prints its table.
# nginx-light is the callback sink when installed; as root with apt-get this
# script installs it, otherwise the suite uses an asyncio sink and says so.
# Extra arguments go to `python -m benchmarks` (see --help).
source "$(dirname "$0")/_venv.sh" bench
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ] \
    && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "== installing nginx-light for the callback sink"
  { apt-get update -qq && apt-get install -y -qq nginx-light; } >/dev/null 2>&1 \
    || echo "   nginx-light could not be installed; using the asyncio sink"
fi
exec .venv/bin/python -m benchmarks "$@"
