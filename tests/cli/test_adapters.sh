#!/usr/bin/env bash
# LoRA adapters through the binary: `atlas extract --adapter DIR` on the tiny llama and GPT-2 gives
# the attention and logits transformers computes with the adapter merged (numpy, within 2e-5 / 1e-4);
# an adapter folder as --model loads its base (base_model_name_or_path or --base); a model folder
# holding adapter files gets them applied with a note (--no-adapter skips); meta lists the adapters;
# errors are one line naming the tensor or key.
source "$(dirname "$0")/lib.sh"

REF="$ATLAS_SHARED_DIR/reference"
if [ ! -d "$REF/models/llama-lora" ] || [ ! -d "$REF/models/gpt2-lora" ]; then
  echo "reference adapters missing under $REF"; exit 1
fi

ids_of() {  # ids_of FILE KEY -> "1,2,3"
  "$ATLAS_PYTHON" -c "import numpy as np,sys; print(','.join(map(str, np.load(sys.argv[1])[sys.argv[2]])))" "$1" "$2"
}

# compare OUT REF [ADAPTER_DIR...]: every layer and the logits; meta lists the adapters given.
compare() {
  "$ATLAS_PYTHON" - "$@" <<'PY'
import hashlib, json, os, sys, numpy as np
z, r = np.load(sys.argv[1]), np.load(sys.argv[2])
a = z["attention"]
layers = sorted(int(k[6:]) for k in r.files if k.startswith("attn_L"))
assert a.shape[0] == len(layers), (a.shape, layers)
worst = max(float(np.abs(a[l] - r[f"attn_L{l}"]).max()) for l in layers)
assert worst <= 2e-5, worst
logits = float(np.abs(z["logits"] - r["logits"]).max())
assert logits <= 1e-4, logits
meta = json.loads(str(z["meta"]))
adapters = meta.get("adapters", [])
want = sys.argv[3:]
assert len(adapters) == len(want), adapters
for got, d in zip(adapters, want):
    cfg = json.load(open(os.path.join(d, "adapter_config.json")))
    assert os.path.realpath(got["path"]) == os.path.realpath(d), (got["path"], d)
    sha = hashlib.sha256(open(os.path.join(d, "adapter_model.safetensors"), "rb").read()).hexdigest()
    assert got["sha256"] == sha, got
    assert got["r"] == cfg["r"] and got["lora_alpha"] == cfg["lora_alpha"], got
    assert got["target_modules"] == cfg["target_modules"], got
    assert abs(got["scaling"] - cfg["lora_alpha"] / cfg["r"]) < 1e-12, got
print(f"attention {worst:.3g} logits {logits:.3g}")
PY
}

# run NAME REF_CASE EXPECT_NOTE_PATTERN ADAPTERS_FOR_META -- atlas extract args...
run() {
  local name=$1 ref=$2 note=$3 adapters=$4
  shift 5
  local out="$TMP/$name.npz"
  if ! "$ATLAS" extract "$@" --ids "$(ids_of "$ref" input_ids)" --logits -q -o "$out" >/dev/null 2>"$TMP/err"; then
    fail "$name: extract failed: $(cat "$TMP/err")"; return
  fi
  if [ -n "$note" ] && ! grep -Eq "^atlas: note: .*$note" "$TMP/err"; then
    fail "$name: expected a note /$note/ on stderr, got: $(cat "$TMP/err")"; return
  fi
  if [ -z "$note" ] && [ -s "$TMP/err" ]; then fail "$name: unexpected stderr: $(cat "$TMP/err")"; return; fi
  # shellcheck disable=SC2086
  if diffs=$(compare "$out" "$ref" $adapters 2>&1); then pass "$name matches transformers ($diffs)"; else fail "$name: $diffs"; fi
}

for arch in llama gpt2; do
  for case in b_len7 c_len60; do
    run "$arch-lora-$case" "$REF/attention/$arch-lora/$case.npz" "" "$REF/models/$arch-lora" -- \
      --model "$REF/models/$arch" --adapter "$REF/models/$arch-lora"
  done
done

ref="$REF/attention/llama-lora/b_len7.npz"
run "adapter-as-model" "$ref" "base model of the adapter .*base_model_name_or_path" "$REF/models/llama-lora" -- \
  --model "$REF/models/llama-lora"
run "adapter-as-model-base" "$ref" "" "$REF/models/llama-lora" -- \
  --model "$REF/models/llama-lora" --base "$REF/models/llama"
if [ -f "$TMP/adapter-as-model.npz" ] && "$ATLAS_PYTHON" - "$TMP/adapter-as-model.npz" "$REF/models/llama" <<'PY'
import json, os, sys, numpy as np
meta = json.loads(str(np.load(sys.argv[1])["meta"]))
assert os.path.realpath(meta["model"]["path"]) == os.path.realpath(sys.argv[2]), meta["model"]["path"]
assert meta["model"]["model_type"] == "llama"
PY
then pass "adapter-as-model: meta.model.path is the base folder"
else fail "adapter-as-model: meta.model.path is not the base folder"; fi

# A model folder that also holds adapter files: applied with a note, or skipped with --no-adapter.
mixed="$TMP/llama-with-adapter"
cp -r "$REF/models/llama" "$mixed"
cp "$REF/models/llama-lora/adapter_config.json" "$REF/models/llama-lora/adapter_model.safetensors" "$mixed/"
run "model-folder-with-adapter" "$ref" "applying the adapter in .*adapter_config.json.*--no-adapter" "$mixed" -- \
  --model "$mixed"
run "model-folder-no-adapter" "$REF/attention/llama/b_len7.npz" "" "" -- --model "$mixed" --no-adapter

# Errors: one line naming the tensor or key.
edited() {  # edited NAME PYTHON_EDIT -> a copy of llama-lora with adapter_config.json edited
  local d="$TMP/$1"
  mkdir -p "$d"
  cp "$REF/models/llama-lora/adapter_model.safetensors" "$d/"
  "$ATLAS_PYTHON" -c "import json,sys; c=json.load(open(sys.argv[1])); $2; json.dump(c, open(sys.argv[2],'w'))" \
    "$REF/models/llama-lora/adapter_config.json" "$d/adapter_config.json"
  echo "$d"
}
ids=3,4,5
expect_error "adapter for another model" "$TMP/e1.npz" "unknown target module 'model.layers.0.self_attn.q_proj'" -- \
  extract --model "$REF/models/gpt2" --adapter "$REF/models/llama-lora" --ids $ids -o "$TMP/e1.npz"
expect_error "shape mismatch names both shapes" "$TMP/e2.npz" "another base model.*\[64, 32\].*\[32, 64\]" -- \
  extract --model "$REF/models/llama" --adapter "$(edited fif 'c["fan_in_fan_out"]=True')" --ids $ids -o "$TMP/e2.npz"
expect_error "unsupported peft_type" "$TMP/e3.npz" "peft_type.*'LORA'.*'IA3'" -- \
  extract --model "$REF/models/llama" --adapter "$(edited ia3 'c["peft_type"]="IA3"')" --ids $ids -o "$TMP/e3.npz"
expect_error "missing adapter_config key" "$TMP/e4.npz" "adapter_config.json.*'lora_alpha'" -- \
  extract --model "$REF/models/llama" --adapter "$(edited noalpha 'del c["lora_alpha"]')" --ids $ids -o "$TMP/e4.npz"
expect_error "module outside target_modules" "$TMP/e5.npz" "v_proj.*target_modules" -- \
  extract --model "$REF/models/llama" --adapter "$(edited onlyq 'c["target_modules"]=["q_proj"]')" --ids $ids -o "$TMP/e5.npz"
expect_error "modules_to_save rejected" "$TMP/e6.npz" "modules_to_save" -- \
  extract --model "$REF/models/llama" --adapter "$(edited save 'c["modules_to_save"]=["lm_head"]')" --ids $ids -o "$TMP/e6.npz"
expect_error "hub base name" "$TMP/e7.npz" "base_model_name_or_path.*meta-llama/Llama-2-7b-hf.*--base DIR" -- \
  extract --model "$(edited hub 'c["base_model_name_or_path"]="meta-llama/Llama-2-7b-hf"')" --ids $ids -o "$TMP/e7.npz"
expect_error "--base with a model folder" "$TMP/e8.npz" "--base .* applies only when the model .* is an adapter folder" -- \
  extract --model "$REF/models/llama" --base "$REF/models/llama" --ids $ids -o "$TMP/e8.npz"

finish
