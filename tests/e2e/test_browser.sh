#!/usr/bin/env bash
# The atlas serve page in a real headless Chromium: tests/e2e/browser/serve.mjs, driven by
# playwright-core from npm (installed here into the build tree, no browser download) and Debian's
# /usr/bin/chromium. Exit 77 (skipped) when chromium, node or npm is missing
# (scripts/install-deps.sh --browser installs them). SCREENSHOT=path also writes a screenshot.
set -uo pipefail
: "${ATLAS:?ATLAS must point to the atlas binary}"
: "${ATLAS_SOURCE_DIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
for tool in node npm curl; do
  command -v "$tool" >/dev/null || { echo "skipped: $tool not found (scripts/install-deps.sh --browser)"; exit 77; }
done
[ -x "$CHROMIUM" ] || { echo "skipped: $CHROMIUM not found (scripts/install-deps.sh --browser)"; exit 77; }

# playwright-core lives next to the binary's build tree (ATLAS_E2E_NODE overrides), installed once.
node_dir=${ATLAS_E2E_NODE:-$(cd "$(dirname "$ATLAS")/.." && pwd)/e2e-node}
if [ ! -f "$node_dir/node_modules/playwright-core/package.json" ]; then
  mkdir -p "$node_dir"
  echo "installing playwright-core into $node_dir"
  # The package alone: PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD keeps it from fetching browsers.
  if ! PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$node_dir" --no-audit --no-fund --silent playwright-core@1; then
    echo "FAIL: npm install playwright-core failed"; exit 1
  fi
fi

TMP=$(mktemp -d)
SERVER_PID=""
trap '[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; rm -rf "$TMP"' EXIT
"$ATLAS" serve --model "$ATLAS_SOURCE_DIR/examples/models/stories260K" --port 0 --threads 1 >"$TMP/server.log" 2>&1 &
SERVER_PID=$!
URL=""
for _ in $(seq 1 300); do
  URL=$(sed -n 's/^atlas serve: listening on //p' "$TMP/server.log" | head -1)
  [ -n "$URL" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.1
done
[ -n "$URL" ] || { echo "FAIL: server did not start: $(cat "$TMP/server.log")"; exit 1; }
cp "$ATLAS_SOURCE_DIR/tests/e2e/browser/serve.mjs" "$node_dir/serve.mjs"   # resolves playwright-core from there
CHROMIUM="$CHROMIUM" node "$node_dir/serve.mjs" "$URL" "$TMP" ${SCREENSHOT:+"$SCREENSHOT"}
rc=$?
[ $rc -eq 0 ] && echo "browser test passed" || echo "browser test FAILED (server log: $(tail -5 "$TMP/server.log"))"
exit $rc
