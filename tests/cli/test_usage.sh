#!/usr/bin/env bash
# Usage errors keep the house style: one line "atlas: error: ..." that names the command and the
# valid choices, exit code 2; every subcommand's --help exits 0.
source "$(dirname "$0")/lib.sh"

# expect_usage NAME PATTERN -- atlas args...
expect_usage() {
  local name=$1 pattern=$2
  shift 3
  local err rc lines
  err=$("$ATLAS" "$@" 2>&1 >/dev/null); rc=$?
  lines=$(printf '%s\n' "$err" | grep -c .)
  if [ "$rc" -ne 2 ]; then fail "$name: exit code $rc, expected 2 (stderr: $err)"; return; fi
  if [ "$lines" -ne 1 ]; then fail "$name: expected one line on stderr, got $lines: $err"; return; fi
  if ! printf '%s' "$err" | grep -q '^atlas: error: '; then fail "$name: stderr does not start with 'atlas: error:': $err"; return; fi
  if ! printf '%s' "$err" | grep -Eq -- "$pattern"; then fail "$name: stderr '$err' does not match /$pattern/"; return; fi
  pass "$name"
}

expect_usage "unknown subcommand" "unknown command 'frobnicate' \(choose from: extract, tokenize, visualize, process, models, analyze, serve\)" -- frobnicate
expect_usage "unknown top-level option" "unknown option '--bogus' \(valid options: --help, --version\)" -- --bogus
expect_usage "unknown option" "^atlas: error: extract: unknown option '--frobnicate' \(valid options: .*--model.*--text" -- \
  extract --frobnicate --model m --text hi -o x.npz
expect_usage "unknown option given with =" "unknown option '--nope'" -- visualize heatmap a.npz -o x.png --nope=3
expect_usage "missing required option" "extract: --model is required; run 'atlas extract --help'" -- extract --text hi -o x.npz
expect_usage "missing positional" "visualize: inputs is required" -- visualize heatmap
expect_usage "bad --dtype value lists the choices" "extract: --dtype: float64 not in \{float32,float16\}" -- \
  extract --model m --text hi -o x.npz --dtype float64
expect_usage "bad figure kind lists the choices" "kind: pie not in \{heatmap,grid,flow,flowgraph,contrast,profile\}" -- \
  visualize pie a.npz -o x.png
expect_usage "models without a subcommand" "models: expected a subcommand \(choose from: info, list\)" -- models
expect_usage "unknown sub-subcommand" "unknown command 'process frob' \(choose from: .*cat, merge, list" -- process frob
expect_usage "models info without a model" "models info: model is required" -- models info
expect_usage "bad number" "visualize: .*--dpi = lots" -- visualize heatmap a.npz -o x.png --dpi lots

expect_usage "analyze without a subcommand" "analyze: expected a subcommand \(choose from: heads, detect, cluster, coref, long, multilingual" -- analyze
expect_usage "bad --fail-if expression" "analyze heads: --fail-if: 'max\(sink_mass': expected '\)'" -- analyze heads a.npz --fail-if 'max(sink_mass'

for args in "" "extract" "tokenize" "visualize" "process" "models" "models info" "models list" "analyze" "analyze heads" \
    "analyze detect" "analyze cluster" "analyze coref" "analyze long" "analyze multilingual" "analyze bias" "analyze attribution" "serve"; do
  # shellcheck disable=SC2086
  if out=$("$ATLAS" $args --help 2>&1) && grep -q -i "usage" <<<"$out"; then   # no pipe: grep -q would SIGPIPE printf under pipefail
    pass "atlas $args --help exits 0"
  else
    fail "atlas $args --help: exit $? or no usage text"
  fi
done
# The list above must cover every registered subcommand.
subs=$("$ATLAS" --help | sed -n '/^Subcommands:/,$p' | awk 'NR > 1 && NF { print $1 }' | sort | paste -sd ' ')
if [ "$subs" = "analyze extract models process serve tokenize visualize" ]; then pass "--help lists exactly the tested subcommands"; else fail "subcommands in --help: '$subs'"; fi
"$ATLAS" --version >/dev/null && pass "--version exits 0" || fail "--version"
finish
