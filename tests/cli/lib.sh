# Shared helpers for the CLI tests (sourced). ctest sets ATLAS, ATLAS_SHARED_DIR, ATLAS_PYTHON,
# ATLAS_SOURCE_DIR, ATLAS_FIXTURES.
set -uo pipefail
: "${ATLAS:?ATLAS must point to the atlas binary}"
: "${ATLAS_PYTHON:=/usr/bin/python3}"
: "${ATLAS_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${ATLAS_SHARED_DIR:=$ATLAS_SOURCE_DIR/../shared}"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
failures=0
passes=0

pass() { passes=$((passes + 1)); echo "ok   - $1"; }
fail() { failures=$((failures + 1)); echo "FAIL - $1"; }

# expect_error NAME OUTPUT_PATH PATTERN -- atlas args...
# The command must exit 1, print exactly one line on stderr that starts with "atlas: error:" and
# matches PATTERN (grep -E), and leave neither OUTPUT_PATH nor a temporary file next to it.
expect_error() {
  local name=$1 out=$2 pattern=$3
  shift 4
  local err rc
  err=$("$ATLAS" "$@" 2>&1 >/dev/null); rc=$?
  local lines
  lines=$(printf '%s\n' "$err" | grep -c .)
  if [ "$rc" -ne 1 ]; then fail "$name: exit code $rc, expected 1 (stderr: $err)"; return; fi
  if [ "$lines" -ne 1 ]; then fail "$name: expected one line on stderr, got $lines: $err"; return; fi
  if ! printf '%s' "$err" | grep -q '^atlas: error: '; then fail "$name: stderr does not start with 'atlas: error:': $err"; return; fi
  if ! printf '%s' "$err" | grep -Eq -- "$pattern"; then fail "$name: stderr '$err' does not match /$pattern/"; return; fi
  if [ -n "$out" ] && [ -e "$out" ]; then fail "$name: partial output $out was left"; return; fi
  if [ -n "$out" ] && ls -a "$(dirname "$out")" 2>/dev/null | grep -q '\.tmp-'; then fail "$name: temporary file left in $(dirname "$out")"; return; fi
  pass "$name ($err)"
}

finish() {
  echo "$passes passed, $failures failed"
  [ "$failures" -eq 0 ]
}
