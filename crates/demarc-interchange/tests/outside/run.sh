#!/usr/bin/env bash
# Loads demarc's OSCAL and CycloneDX exports of the bank example in outside implementations:
# compliance-trestle's OSCAL models and cyclonedx-python-lib's JSON validator (and its model).
# Builds nothing: DEMARC_BIN names the `demarc` binary (e.g. target/debug/demarc).
# The virtualenv lives under $HOME/.cache (INTERCHANGE_VENV to choose another); the pinned
# packages in requirements.txt are installed into it when they are not there yet.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

# shellcheck source=../../../../.ci/venv.sh
. "$here/../../../../.ci/venv.sh"
demarc_bin interchange
venv="${INTERCHANGE_VENV:-$HOME/.cache/demarc-interchange-venv}"
pinned_venv "$venv" "$here/requirements.txt"

export PYTHONDONTWRITEBYTECODE=1
exec "$venv/bin/python" "$here/check.py" "$@"
