#!/usr/bin/env bash
# Installs Loopitis into .venv and runs the whole trio locally: `loopitis dev`.
# Extra arguments go to `loopitis dev` (e.g. --port 8080 --consumers 3).
source "$(dirname "$0")/_venv.sh" local
exec .venv/bin/loopitis dev "$@"
