#!/usr/bin/env bash
# Runs the OpenAI Python SDK suite against a real `demarc gateway` and `demarc fake-upstream`.
# Builds nothing: DEMARC_BIN names the `demarc` binary (e.g. target/debug/demarc).
# The virtualenv lives under $HOME/.cache (SDK_VENV to choose another); the pinned packages in
# requirements.txt are installed into it when they are not there yet.
# Extra arguments go to pytest (e.g. `-k logprobs -x`).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

if [ -z "${DEMARC_BIN:-}" ]; then
  echo "sdk: set DEMARC_BIN to the demarc binary (cargo build -p demarc-cli first)" >&2
  exit 2
fi
DEMARC_BIN="$(cd "$(dirname "$DEMARC_BIN")" && pwd)/$(basename "$DEMARC_BIN")"
[ -x "$DEMARC_BIN" ] || { echo "sdk: $DEMARC_BIN is not an executable" >&2; exit 2; }
export DEMARC_BIN

venv="${SDK_VENV:-$HOME/.cache/demarc-sdk-venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
# Install only when a pinned version is missing, so a warm cache runs offline.
if ! "$venv/bin/python" - "$here/requirements.txt" <<'PY'
import sys
from importlib.metadata import version, PackageNotFoundError
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if not line:
        continue
    name, want = line.split("==")
    try:
        if version(name) != want:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PY
then
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt"
fi

cd "$here"
# Leave no __pycache__ in the source tree.
export PYTHONDONTWRITEBYTECODE=1
exec "$venv/bin/python" -m pytest -p no:cacheprovider "$@"
