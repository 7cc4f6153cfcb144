# Shared by scripts/test and scripts/demo: create .venv with a Python >= 3.11 and install the project into it.
ensure_venv() {
  local extras=$1
  local python=${PYTHON:-python3}
  if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "pvmonit-exporter needs Python 3.11 or newer; found: $("$python" --version 2>&1)" >&2
    exit 2
  fi
  if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv || {
      echo "Could not create a virtualenv. On Debian / Raspberry Pi OS: sudo apt install python3-venv" >&2
      exit 2
    }
  fi
  # pip's own chatter goes to a log, shown only when the install fails.
  local log=.venv/install.log
  if ! { .venv/bin/python -m pip install --upgrade pip \
         && .venv/bin/python -m pip install --editable "$extras"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "Installing into .venv failed (full log above, also in $log)." >&2
    exit 2
  fi
}
