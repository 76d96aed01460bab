#!/usr/bin/env bash
# Loads demarc's OSCAL and CycloneDX exports of the bank example in outside implementations:
# compliance-trestle's OSCAL models and cyclonedx-python-lib's JSON validator (and its model).
# Builds nothing: DEMARC_BIN names the `demarc` binary (e.g. target/debug/demarc).
# The virtualenv lives under $HOME/.cache (INTERCHANGE_VENV to choose another); the pinned
# packages in requirements.txt are installed into it when they are not there yet.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

if [ -z "${DEMARC_BIN:-}" ]; then
  echo "interchange: set DEMARC_BIN to the demarc binary (cargo build -p demarc-cli first)" >&2
  exit 2
fi
DEMARC_BIN="$(cd "$(dirname "$DEMARC_BIN")" && pwd)/$(basename "$DEMARC_BIN")"
[ -x "$DEMARC_BIN" ] || { echo "interchange: $DEMARC_BIN is not an executable" >&2; exit 2; }
export DEMARC_BIN

venv="${INTERCHANGE_VENV:-$HOME/.cache/demarc-interchange-venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
# Install only when a pinned version is missing, so a warm cache runs offline.
if ! "$venv/bin/python" - "$here/requirements.txt" <<'PY'
import re, sys
from importlib.metadata import version, PackageNotFoundError
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if not line:
        continue
    name, want = line.split("==")
    try:
        if version(re.sub(r"\[.*\]", "", name)) != want:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PY
then
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt"
fi

export PYTHONDONTWRITEBYTECODE=1
exec "$venv/bin/python" "$here/check.py" "$@"
