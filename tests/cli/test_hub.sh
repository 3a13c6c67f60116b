#!/usr/bin/env bash
# Model names through the Hugging Face cache and downloads, against tests/fixtures/hub/fake_hub.py on
# 127.0.0.1 (no real network): the cache layout huggingface_hub expects, offline use, one-line
# errors, resume of a broken download, a wrong sha256 refused, two concurrent downloads.
source "$(dirname "$0")/lib.sh"
MODEL="$ATLAS_SHARED_DIR/reference/models/gpt2"
FAKE="$ATLAS_SOURCE_DIR/tests/fixtures/hub/fake_hub.py"
REPO=atlas-test/tiny-gpt2
COMMIT=0123456789abcdef0123456789abcdef01234567
if [ ! -f "$MODEL/model.safetensors" ]; then echo "SKIP: $MODEL is missing"; exit 77; fi
OUT="$TMP/out"; mkdir -p "$OUT"
unset HF_TOKEN HF_HUB_OFFLINE TRANSFORMERS_OFFLINE HF_HOME
export HF_HUB_DISABLE_TELEMETRY=1

SERVERS=()
start_hub() {   # start_hub NAME [fake_hub options...]: sets PORT
  local name=$1; shift
  rm -f "$TMP/$name.port"
  "$ATLAS_PYTHON" "$FAKE" --model-dir "$MODEL" --repo "$REPO" --port-file "$TMP/$name.port" \
    --log "$TMP/$name.log" "$@" &
  SERVERS+=($!)
  for _ in $(seq 100); do [ -s "$TMP/$name.port" ] && break; sleep 0.05; done
  PORT=$(cat "$TMP/$name.port")
}
trap 'for p in "${SERVERS[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$TMP"' EXIT

same_npz() {   # same_npz A B: every array but the provenance equal
  "$ATLAS_PYTHON" - "$1" "$2" <<'EOF'
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
keys = [k for k in a.files if not k.startswith("meta")]
assert keys and sorted(keys) == sorted(k for k in b.files if not k.startswith("meta")), (a.files, b.files)
for k in keys:
    assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k
EOF
}

text='The doctor hired the nurse.'
"$ATLAS" extract --model "$MODEL" --text "$text" --threads 1 -o "$OUT/local.npz" > /dev/null 2>&1 \
  || fail "extract from the local folder"

# --- download, then extract from the cache
start_hub main
export HF_HUB_CACHE="$TMP/cache" HF_ENDPOINT="http://127.0.0.1:$PORT"
if "$ATLAS" extract --model "$REPO" --text "$text" --threads 1 -o "$OUT/hub.npz" > "$OUT/hub.log" 2>&1; then
  pass "extract --model $REPO downloads into HF_HUB_CACHE"
else
  fail "extract --model $REPO: $(cat "$OUT/hub.log")"
fi
if same_npz "$OUT/local.npz" "$OUT/hub.npz" 2>"$OUT/cmp.log"; then pass "the downloaded model extracts what the local folder does"
else fail "NPZ from the hub differs from the local folder: $(cat "$OUT/cmp.log")"; fi

R="$HF_HUB_CACHE/models--atlas-test--tiny-gpt2"
sha=$(sha256sum "$MODEL/model.safetensors" | cut -d' ' -f1)
if [ "$(cat "$R/refs/main")" = "$COMMIT" ]; then pass "refs/main holds the commit"; else fail "refs/main: '$(cat "$R/refs/main" 2>&1)'"; fi
link=$(readlink "$R/snapshots/$COMMIT/model.safetensors")
if [ "$link" = "../../blobs/$sha" ] && cmp -s "$R/blobs/$sha" "$MODEL/model.safetensors"; then
  pass "snapshot file is a relative symlink to blobs/<sha256>"
else fail "snapshot link '$link' (expected ../../blobs/$sha)"; fi
bad=0
for f in config.json vocab.json merges.txt tokenizer_config.json special_tokens_map.json; do
  [ -L "$R/snapshots/$COMMIT/$f" ] && cmp -s "$R/snapshots/$COMMIT/$f" "$MODEL/$f" || bad=1
done
if [ "$bad" -eq 0 ]; then pass "config and tokenizer files linked into the snapshot"; else fail "snapshot files: $(ls -l "$R/snapshots/$COMMIT")"; fi
if [ ! -e "$R/snapshots/$COMMIT/generation_config.json" ]; then pass "generation_config.json not downloaded"
else fail "generation_config.json was downloaded"; fi
if ! ls "$R/blobs" | grep -q incomplete; then pass "no .incomplete left"; else fail "blobs: $(ls "$R/blobs")"; fi
if "$ATLAS_PYTHON" -c "import huggingface_hub" 2>/dev/null; then
  if HF_HUB_OFFLINE=1 "$ATLAS_PYTHON" -c "
import huggingface_hub as h, sys
p = h.snapshot_download('$REPO', cache_dir='$HF_HUB_CACHE', local_files_only=True)
assert p.endswith('$COMMIT'), p" 2>"$OUT/py.log"; then pass "huggingface_hub finds the snapshot"
  else fail "huggingface_hub: $(tail -1 "$OUT/py.log")"; fi
fi

# --- a second run touches the network for the revision only; offline never
n1=$(grep -c /lfs/ "$TMP/main.log")
"$ATLAS" extract --model "$REPO" --text "$text" --threads 1 -o "$OUT/again.npz" > /dev/null 2>&1
n2=$(grep -c /lfs/ "$TMP/main.log")
if [ "$n1" = "$n2" ] && same_npz "$OUT/local.npz" "$OUT/again.npz"; then pass "second run downloads nothing"
else fail "second run fetched weights again ($n1 -> $n2)"; fi
lines=$(wc -l < "$TMP/main.log")
if HF_HUB_OFFLINE=1 "$ATLAS" extract --model "$REPO" --text "$text" --threads 1 -o "$OUT/off.npz" > /dev/null 2>&1 \
   && [ "$(wc -l < "$TMP/main.log")" = "$lines" ] && same_npz "$OUT/local.npz" "$OUT/off.npz"; then
  pass "HF_HUB_OFFLINE=1 works from the cache without a request"
else fail "offline run"; fi
if HF_HUB_OFFLINE=1 "$ATLAS" tokenize --model "$REPO@$COMMIT" --text "$text" --json > "$OUT/tok.json" 2>&1 \
   && grep -q '"ids"' "$OUT/tok.json"; then pass "tokenize --model REPO@COMMIT offline"
else fail "tokenize offline: $(cat "$OUT/tok.json")"; fi

# --- one-line errors
HF_HUB_OFFLINE=1 expect_error "missing model while offline" "$OUT/x.npz" "atlas-test/absent.*HF_HUB_OFFLINE" -- \
  extract --model atlas-test/absent --text hi -o "$OUT/x.npz"
expect_error "revision that does not exist" "$OUT/x.npz" "revision 'no-such-branch'.*not found" -- \
  extract --model "$REPO@no-such-branch" --text hi -o "$OUT/x.npz"
expect_error "repository that does not exist" "$OUT/x.npz" "atlas-test/absent.*not found" -- \
  extract --model atlas-test/absent --text hi -o "$OUT/x.npz"
free_port=$("$ATLAS_PYTHON" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])")
HF_ENDPOINT="http://127.0.0.1:$free_port" HF_HUB_CACHE="$TMP/empty" expect_error "unreachable hub" "$OUT/x.npz" \
  "cannot reach the Hugging Face Hub at http://127.0.0.1:$free_port" -- extract --model "$REPO" --text hi -o "$OUT/x.npz"
if HF_ENDPOINT="http://127.0.0.1:$free_port" "$ATLAS" extract --model "$REPO" --text "$text" --threads 1 \
     -o "$OUT/fallback.npz" > /dev/null 2>&1; then pass "unreachable hub falls back to the cache"
else fail "no fallback to the cache when the hub is unreachable"; fi

# --- a token
start_hub token --token s3cret
HF_ENDPOINT="http://127.0.0.1:$PORT" HF_HUB_CACHE="$TMP/c-token" expect_error "no token for a private model" \
  "$OUT/x.npz" "refused access.*HF_TOKEN" -- extract --model "$REPO" --text hi -o "$OUT/x.npz"
if HF_TOKEN=s3cret HF_ENDPOINT="http://127.0.0.1:$PORT" HF_HUB_CACHE="$TMP/c-token" \
     "$ATLAS" tokenize --model "$REPO" --text hi > "$OUT/t.log" 2>&1; then pass "HF_TOKEN is sent"
else fail "HF_TOKEN: $(cat "$OUT/t.log")"; fi

# --- a connection dropped mid-file resumes with a Range
start_hub drop --drop-after 100000
if HF_ENDPOINT="http://127.0.0.1:$PORT" HF_HUB_CACHE="$TMP/c-drop" "$ATLAS" extract --model "$REPO" --text "$text" \
     --threads 1 -o "$OUT/drop.npz" > "$OUT/drop.log" 2>&1 && same_npz "$OUT/local.npz" "$OUT/drop.npz" \
   && grep -q "GET /lfs/$sha bytes=100000-" "$TMP/drop.log"; then pass "broken download resumed with Range: bytes=100000-"
else fail "resume: $(cat "$OUT/drop.log"; cat "$TMP/drop.log")"; fi
# ... and a partial file left by an earlier run is resumed too
mkdir -p "$TMP/c-part/models--atlas-test--tiny-gpt2/blobs"
head -c 300000 "$MODEL/model.safetensors" > "$TMP/c-part/models--atlas-test--tiny-gpt2/blobs/$sha.incomplete"
start_hub part
if HF_ENDPOINT="http://127.0.0.1:$PORT" HF_HUB_CACHE="$TMP/c-part" "$ATLAS" tokenize --model "$REPO" --text hi >/dev/null 2>&1 &&
   HF_ENDPOINT="http://127.0.0.1:$PORT" HF_HUB_CACHE="$TMP/c-part" "$ATLAS" extract --model "$REPO" --text "$text" \
     --threads 1 -o "$OUT/part.npz" > "$OUT/part.log" 2>&1 && same_npz "$OUT/local.npz" "$OUT/part.npz" \
   && grep -q "GET /lfs/$sha bytes=300000-" "$TMP/part.log"; then pass "an .incomplete file of an earlier run is resumed"
else fail "resume of .incomplete: $(cat "$OUT/part.log")"; fi

# --- a wrong sha256 is refused and nothing is kept
start_hub bad --bad-sha
HF_ENDPOINT="http://127.0.0.1:$PORT" HF_HUB_CACHE="$TMP/c-bad" expect_error "wrong sha256 refused" "$OUT/x.npz" \
  "sha256 mismatch" -- extract --model "$REPO" --text hi -o "$OUT/x.npz"
if [ -z "$(ls "$TMP/c-bad/models--atlas-test--tiny-gpt2/blobs" | grep -E '^f{64}')" ] \
   && [ ! -e "$TMP/c-bad/models--atlas-test--tiny-gpt2/snapshots/$COMMIT/model.safetensors" ]; then
  pass "the bad blob is not kept"
else fail "bad blob kept: $(ls "$TMP/c-bad/models--atlas-test--tiny-gpt2/blobs")"; fi

# --- two processes download the same model at once
start_hub conc
for i in 1 2; do
  HF_ENDPOINT="http://127.0.0.1:$PORT" HF_HUB_CACHE="$TMP/c-conc" "$ATLAS" extract --model "$REPO" --text "$text" \
    --threads 1 -o "$OUT/conc$i.npz" > "$OUT/conc$i.log" 2>&1 &
done
ok=1
for j in $(jobs -p); do case " ${SERVERS[*]} " in *" $j "*) ;; *) wait "$j" || ok=0 ;; esac; done
if [ "$ok" -eq 1 ] && same_npz "$OUT/local.npz" "$OUT/conc1.npz" && same_npz "$OUT/local.npz" "$OUT/conc2.npz" \
   && cmp -s "$TMP/c-conc/models--atlas-test--tiny-gpt2/blobs/$sha" "$MODEL/model.safetensors" \
   && [ "$(grep -c "GET /lfs/" "$TMP/conc.log")" = 1 ]; then
  pass "two concurrent downloads both succeed (the weights fetched once, under the lock)"
else fail "concurrent downloads: $(cat "$OUT/conc1.log" "$OUT/conc2.log")"; fi

# --- atlas models
if "$ATLAS" models list > "$OUT/list.txt" 2>&1 && grep -q "$REPO" "$OUT/list.txt" && grep -q main "$OUT/list.txt"; then
  pass "models list shows the cached model"
else fail "models list: $(cat "$OUT/list.txt")"; fi
if "$ATLAS" models info "$REPO" --json > "$OUT/info.json" 2>&1 && "$ATLAS_PYTHON" - "$OUT/info.json" "$sha" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["model_type"] == "gpt2" and j["num_layers"] == 2 and j["num_heads"] == 4 and j["hidden_size"] == 64, j
assert j["vocab_size"] == 1000 and j["head_dim"] == 16 and j["weights_dtype"] == "F32", j
assert j["files"]["model.safetensors"] == sys.argv[2], j["files"]
assert j["parameters"] > 0 and j["tokenizer"], j
EOF
then pass "models info --json"; else fail "models info: $(cat "$OUT/info.json")"; fi
if "$ATLAS" models info "$MODEL" > "$OUT/info.txt" 2>&1 && grep -q "GPT2LMHeadModel" "$OUT/info.txt"; then
  pass "models info on a folder"
else fail "models info text: $(cat "$OUT/info.txt")"; fi

finish
