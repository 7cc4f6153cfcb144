# Shared by scripts/test, scripts/demo and scripts/bench: create .venv with a Python >= 3.11 and install the
# project into it (editable, with the given extras) — only when needed, so that a second run with nothing
# changed starts at once and without the network.
#
# .venv/pvmonit-installed holds one line per install that succeeded: the SHA-256 of pyproject.toml (where
# the dependencies are) and the extras. A run whose extras an install with the same hash covered installs
# nothing: the install is editable, so changed code needs no reinstall; a changed pyproject.toml does.
ensure_venv() {
  local spec=$1  # ".", ".[test]", ".[test,bench]"
  local python=${PYTHON:-python3}
  local stamp=.venv/pvmonit-installed
  local log=.venv/install.log
  if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "pvmonit-exporter needs Python 3.11 or newer; found: $("$python" --version 2>&1)" >&2
    exit 2
  fi
  local hash
  hash=$("$python" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' \
         pyproject.toml)
  if [ -x .venv/bin/python ] && .venv/bin/python -c '' 2>/dev/null && venv_covers "$stamp" "$hash" "$spec"; then
    return 0
  fi
  if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c '' 2>/dev/null; then
    echo "setting up .venv, about a minute the first time (pip's output goes to $log)" >&2
    rm -rf .venv
    "$python" -m venv .venv || {
      echo "Could not create a virtualenv. On Debian / Raspberry Pi OS: sudo apt install python3-venv" >&2
      exit 2
    }
  else
    echo "updating .venv for $spec (pyproject.toml changed, or new extras; pip's output goes to $log)" >&2
  fi
  # pip's own chatter goes to a log, shown only when the install fails.
  if ! { .venv/bin/python -m pip install --upgrade pip \
         && .venv/bin/python -m pip install --editable "$spec"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "Installing into .venv failed (full log above, also in $log)." >&2
    exit 2
  fi
  # Keep only the lines of this pyproject.toml, then record this install.
  { grep "^$hash " "$stamp" 2>/dev/null || true; echo "$hash $spec"; } >"$stamp.new"
  mv "$stamp.new" "$stamp"
}

# Whether an install recorded in $1 with hash $2 had every extra that spec $3 asks for.
venv_covers() {
  local stamp=$1 hash=$2 spec=$3
  [ -f "$stamp" ] || return 1
  local wanted extra line have
  wanted=$(extras_of "$spec")
  while read -r line; do
    [ "${line%% *}" = "$hash" ] || continue
    have=",$(extras_of "${line#* }"),"
    local missing=0
    for extra in ${wanted//,/ }; do
      case "$have" in *",$extra,"*) ;; *) missing=1 ;; esac
    done
    [ "$missing" = 0 ] && return 0
  done <"$stamp"
  return 1
}

# ".[test,bench]" → "test,bench"; "." → "".
extras_of() {
  local spec=$1
  case "$spec" in *"["*"]") spec=${spec#*[}; echo "${spec%]}" ;; *) echo "" ;; esac
}
