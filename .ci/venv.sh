# Sourced by the test scripts that drive the `demarc` binary from Python
# (crates/demarc-gateway/tests/sdk/run.sh, crates/demarc-interchange/tests/outside/run.sh).

# Check DEMARC_BIN (the `demarc` binary to drive; nothing is built here), make it absolute
# and export it. $1 names the caller in messages.
demarc_bin() {
  if [ -z "${DEMARC_BIN:-}" ]; then
    echo "$1: set DEMARC_BIN to the demarc binary (cargo build -p demarc-cli first)" >&2
    exit 2
  fi
  DEMARC_BIN="$(cd "$(dirname "$DEMARC_BIN")" && pwd)/$(basename "$DEMARC_BIN")"
  [ -x "$DEMARC_BIN" ] || { echo "$1: $DEMARC_BIN is not an executable" >&2; exit 2; }
  export DEMARC_BIN
}

# Make the virtualenv $1 and install the pinned packages of requirements file $2 into it,
# only when one is missing or at another version, so that a warm cache runs offline.
pinned_venv() {
  local venv="$1" requirements="$2"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  if ! "$venv/bin/python" - "$requirements" <<'PY'
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
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
  fi
}
