#!/usr/bin/env bash
# Runs the OpenAI Python SDK suite against a real `demarc gateway` and `demarc fake-upstream`.
# Builds nothing: DEMARC_BIN names the `demarc` binary (e.g. target/debug/demarc).
# The virtualenv lives under $HOME/.cache (SDK_VENV to choose another); the pinned packages in
# requirements.txt are installed into it when they are not there yet.
# Extra arguments go to pytest (e.g. `-k logprobs -x`).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

# shellcheck source=../../../../.ci/venv.sh
. "$here/../../../../.ci/venv.sh"
demarc_bin sdk
venv="${SDK_VENV:-$HOME/.cache/demarc-sdk-venv}"
pinned_venv "$venv" "$here/requirements.txt"

cd "$here"
# Leave no __pycache__ in the source tree.
export PYTHONDONTWRITEBYTECODE=1
exec "$venv/bin/python" -m pytest -p no:cacheprovider "$@"
