#!/usr/bin/env bash
# `atlas process` operations end to end on the embedded model (examples/models/stories260K):
# every op writes the attention layout (numpy checks shapes, meta.process, values against numpy /
# networkx re-computations), the outputs read back through visualize, a whole store (with a failed
# document) is processed, and bad input fails with one clear line.
source "$(dirname "$0")/lib.sh"
MODEL="$ATLAS_SOURCE_DIR/examples/models/stories260K"
OUT="$TMP/out"; mkdir -p "$OUT"
PY="$ATLAS_PYTHON"
run() { local name=$1; shift; "$ATLAS" "$@" >"$OUT/$name.out" 2>"$OUT/$name.err"; rc=$?; }
ok_or_fail() { if [ "$rc" -eq 0 ]; then pass "$1"; else fail "$1: exit $rc $(head -c 400 "$OUT/$2.err")"; fi; }

TEXT="Mom told Lucy that she could have a cookie, 小猫 ok."
run ex extract --model "$MODEL" --text "$TEXT" --threads 1 -o "$OUT/s.npz"
[ "$rc" -eq 0 ] || { fail "extract: $(cat "$OUT/ex.err")"; finish; exit 1; }
run ex2 extract --model "$MODEL" --text "Mom told Lucy that he could have a cookie, 小猫 ok." --threads 1 -o "$OUT/he.npz"
run ex3 extract --model "$MODEL" --text "Tom ran home." --threads 1 -o "$OUT/tom.npz"

run words process words "$OUT/s.npz" -o "$OUT/w.npz";                       ok_or_fail "process words" words
run agg process aggregate "$OUT/s.npz" -o "$OUT/agg.npz" --over heads --how max; ok_or_fail "process aggregate" agg
run aggb process aggregate "$OUT/s.npz" -o "$OUT/aggb.npz" --over both;     ok_or_fail "process aggregate --over both" aggb
run roll process rollout "$OUT/s.npz" -o "$OUT/r.npz";                      ok_or_fail "process rollout" roll
run rolln process rollout "$OUT/s.npz" -o "$OUT/rn.npz" --no-residual;      ok_or_fail "process rollout --no-residual" rolln
run flow process flow "$OUT/s.npz" -o "$OUT/f.npz" --layers 2,-1 --threads 2; ok_or_fail "process flow" flow
run slice process slice "$OUT/s.npz" -o "$OUT/sl.npz" --layers 0,-1 --heads 1-2 --tokens 1:-1; ok_or_fail "process slice" slice
run topk process topk "$OUT/s.npz" 3 -o "$OUT/t.npz";                       ok_or_fail "process topk" topk
run dw process diff "$OUT/s.npz" "$OUT/he.npz" -o "$OUT/dw.npz" --words;    ok_or_fail "process diff --words (she/he)" dw
run ex4 extract --model "$MODEL" --text "$TEXT" --threads 1 --layers 0-3 -o "$OUT/s4.npz"
run diff process diff "$OUT/s.npz" "$OUT/s.npz" -o "$OUT/d.npz";            ok_or_fail "process diff (same tokens)" diff
run chain process rollout "$OUT/w.npz" -o "$OUT/wr.npz";                    ok_or_fail "process rollout of a words file" chain

if "$PY" - "$OUT" <<'PY'
import json, sys
import numpy as np
o = sys.argv[1]
def load(n):
    z = np.load(f"{o}/{n}.npz")
    return z, json.loads(str(z["meta"]))
s, sm = load("s")
A = s["attention"].astype(np.float64)          # [5, 8, T, T]
L, H, T, _ = A.shape

w, wm = load("w")
assert list(w["tokens"]) == ["<s>", "Mom", "told", "Lucy", "that", "she", "could", "have", "a", "cookie,", "小", "猫", "ok."], list(w["tokens"])
assert w["attention"].shape == (L, H, 13, 13)
assert np.allclose(w["attention"].sum(-1), 1, atol=1e-5)
wot = w["word_of_token"]
assert wot.shape == (T,)
ref = np.zeros((L, H, 13, 13))
for a in range(13):
    rows = np.where(wot == a)[0]
    for b in range(13):
        ref[:, :, a, b] = A[:, :, rows][:, :, :, wot == b].sum(-1).mean(-1)
assert np.abs(ref - w["attention"]).max() < 1e-5
assert wm["process"][-1]["op"] == "words" and wm["process"][-1]["level"] == "word"

agg, am = load("agg")
assert agg["attention"].shape == (L, 1, T, T) and list(agg["heads"]) == [-1]
assert np.abs(agg["attention"][:, 0] - A.max(1)).max() < 1e-6
assert am["process"][0] == {**am["process"][0], "op": "aggregate", "over": "heads", "how": "max"}
aggb, _ = load("aggb")
assert aggb["attention"].shape == (1, 1, T, T) and np.abs(aggb["attention"][0, 0] - A.mean((0, 1))).max() < 1e-6

a = A.mean(1)
aug = 0.5 * a + 0.5 * np.eye(T); aug /= aug.sum(-1, keepdims=True)
R = [aug[0]]
for l in range(1, L): R.append(aug[l] @ R[-1])
r, rm = load("r")
assert r["attention"].shape == (L, 1, T, T) and list(r["layers"]) == list(range(L))
assert np.abs(r["attention"][:, 0] - np.array(R)).max() < 1e-5
assert rm["process"][0]["op"] == "rollout" and rm["process"][0]["residual"] is True
assert rm["model"] == sm["model"], "meta of the input is kept"
rn, _ = load("rn")
Rn = a[0] / a[0].sum(-1, keepdims=True)
for l in range(1, L): Rn = (a[l] / a[l].sum(-1, keepdims=True)) @ Rn
assert np.abs(rn["attention"][-1, 0] - Rn).max() < 1e-5

f, fm = load("f")
assert f["attention"].shape == (2, 1, T, T) and list(f["layers"]) == [2, 4], (f["attention"].shape, list(f["layers"]))
try:
    import networkx as nx
    G = nx.DiGraph()
    for k in range(L):
        for p in range(T):
            for q in range(T):
                if aug[k, p, q] > 0: G.add_edge((k + 1, p), (k, q), capacity=aug[k, p, q])
    for i, j in [(T - 1, 0), (T - 1, 5), (10, 3), (20, 20)]:
        v = nx.maximum_flow_value(G, (L, i), (0, j))
        assert abs(v - f["attention"][1, 0, i, j]) < 1e-5, (i, j, v, f["attention"][1, 0, i, j])
except ImportError:
    raise SystemExit("networkx missing (scripts/install-deps.sh installs python3-networkx): flow not checked")
assert (f["attention"] <= 1 + 1e-6).all() and (f["attention"] >= -1e-9).all()

sl, _ = load("sl")
assert sl["attention"].shape == (2, 2, T - 2, T - 2) and list(sl["layers"]) == [0, 4] and list(sl["heads"]) == [1, 2]
assert np.abs(sl["attention"] - A[[0, 4]][:, [1, 2]][:, :, 1:-1, 1:-1]).max() < 1e-7
assert list(sl["tokens"]) == list(s["tokens"][1:-1])

t, tm = load("t")
assert "attention" not in t and t["attention_topk_values"].shape == (L, H, T, 3)
assert list(t["attention_topk_shape"]) == [L, H, T, T] and tm["topk"] == 3
top = np.sort(A, -1)[..., ::-1][..., :3]
assert np.abs(t["attention_topk_values"] - top).max() < 1e-6

d, dm = load("d")
assert np.abs(d["attention"]).max() == 0
assert dm["process"][0]["op"] == "diff" and dm["process"][0]["b"].endswith("s.npz")
dw, dwm = load("dw")
he = np.load(f"{o}/he.npz")["attention"]
assert dw["attention"].shape == (L, H, 13, 13)
assert dwm["process"][0]["differing_words"] == [[5, "she", "he"]], dwm["process"][0]
assert list(dw["token_labels"])[5] == "she/he"
assert np.abs(dw["attention"].sum(-1)).max() < 1e-5       # rows of A and B both sum to 1

wr, wrm = load("wr")
assert [p["op"] for p in wrm["process"]] == ["words", "rollout"], "meta.process is appended"
PY
then pass "outputs match numpy/networkx re-computations; meta.process recorded and appended"; else fail "output contents"; fi

# Outputs read back by visualize (words file, rollout with its head axis of size 1, sparse top-k).
run v1 visualize heatmap "$OUT/w.npz" -o "$OUT/w.png" --layer 2 --head mean; ok_or_fail "visualize heatmap of a words file" v1
run v2 visualize heatmap "$OUT/r.npz" -o "$OUT/r.png" --layer 4 --head all; ok_or_fail "visualize heatmap of a rollout" v2
run v3 visualize heatmap "$OUT/t.npz" -o "$OUT/t.png" --layer 0 --head 0;    ok_or_fail "visualize heatmap of a topk file" v3

expect_error "diff of a she/he pair without --words" "$OUT/bad.npz" "position 10 is '▁she' vs '▁he'" -- \
  process diff "$OUT/s.npz" "$OUT/he.npz" -o "$OUT/bad.npz"
expect_error "diff of files with different layers" "$OUT/bad.npz" "s4.npz layers 0,1,2,3" -- \
  process diff "$OUT/s.npz" "$OUT/s4.npz" -o "$OUT/bad.npz"
expect_error "diff of files with different tokens names both files" "$OUT/bad.npz" "s.npz and .*tom.npz have different tokens" -- \
  process diff "$OUT/s.npz" "$OUT/tom.npz" -o "$OUT/bad.npz"
expect_error "diff --words of different words" "$OUT/bad.npz" "different words" -- \
  process diff "$OUT/s.npz" "$OUT/tom.npz" -o "$OUT/bad.npz" --words
expect_error "slice with an unknown head" "$OUT/bad.npz" "--heads '9'.*head 9 is not there" -- \
  process slice "$OUT/s.npz" -o "$OUT/bad.npz" --heads 9
expect_error "flow of an unknown layer" "$OUT/bad.npz" "--layers '7'" -- process flow "$OUT/s.npz" -o "$OUT/bad.npz" --layers 7
expect_error "aggregate --over rows" "$OUT/bad.npz" "--over 'rows'" -- process aggregate "$OUT/s.npz" -o "$OUT/bad.npz" --over rows
expect_error "value-norm without value norms" "$OUT/bad.npz" "no 'value_norms'" -- process value-norm "$OUT/s.npz" -o "$OUT/bad.npz"
expect_error "a missing input" "$OUT/bad.npz" "nope.npz" -- process rollout "$OUT/nope.npz" -o "$OUT/bad.npz"

# A store with a failed document: processed per document, the failed one reported, kept, counted.
printf 'Lily had a ball.\n\nTom ran home.\n' > "$TMP/c3.txt"
run store extract --model "$MODEL" --input "$TMP/c3.txt" --threads 1 --allow-failures --quiet -o "$OUT/store"
run pstore process rollout "$OUT/store" -o "$OUT/rstore"
if [ "$rc" -eq 0 ] && grep -q "2 documents" "$OUT/pstore.out" && grep -q "1 failed" "$OUT/pstore.out" && grep -q "failed   2: " "$OUT/pstore.out"; then
  pass "process rollout of a store: 2 documents, the failed one reported and counted"
else fail "process rollout STORE: exit $rc $(cat "$OUT/pstore.out" "$OUT/pstore.err" | head -c 600)"; fi
run plist process list "$OUT/rstore"
grep -q "3 documents: 2 ok, 1 failed" "$OUT/plist.out" && pass "the processed store keeps the failed document" || fail "process list of the processed store: $(cat "$OUT/plist.out")"
run pcat process rollout "$OUT/store:3" -o "$OUT/r3.npz"; ok_or_fail "process rollout STORE:DOC" pcat
expect_error "STORE:DOC of a failed document" "$OUT/r2.npz" "failed" -- process rollout "$OUT/store:2" -o "$OUT/r2.npz"

# Sentence pairs: words per segment, offsets into each text, segment ids kept.
if [ -d "$ATLAS_SHARED_DIR/reference/models/bert" ]; then
  run pair extract --model "$ATLAS_SHARED_DIR/reference/models/bert" --text "The cat sat." --pair "A dog ran." --threads 1 -o "$OUT/pair.npz"
  run pairw process words "$OUT/pair.npz" -o "$OUT/pairw.npz"
  if [ "$rc" -eq 0 ] && "$PY" -c "
import numpy as np
w = np.load('$OUT/pairw.npz')
assert list(w['tokens']) == ['[CLS]', 'The', 'cat', 'sat.', '[SEP]', 'A', 'dog', 'ran.', '[SEP]'], list(w['tokens'])
assert list(w['token_type_ids']) == [0, 0, 0, 0, 0, 1, 1, 1, 1] and w['offsets'][6].tolist() == [2, 5]
assert np.allclose(w['attention'].sum(-1), 1, atol=1e-5)"; then pass "process words of a BERT sentence pair"; else fail "process words of a pair: $(cat "$OUT/pairw.err")"; fi
fi

# --value-norms: ||f_h(x_j)|| recomputed with numpy from the checkpoint for layer 0 (llama: RMSNorm,
# grouped-query value heads; gpt2: LayerNorm, Conv1D), then process value-norm = alpha * norm.
REF="$ATLAS_SHARED_DIR/reference/models"
run vn extract --model "$MODEL" --text "$TEXT" --threads 1 --value-norms -o "$OUT/vn.npz"; ok_or_fail "extract --value-norms (llama)" vn
if [ -d "$REF/gpt2" ]; then
  run vng extract --model "$REF/gpt2" --ids 5,17,42,7,99 --threads 1 --value-norms -o "$OUT/vng.npz"; ok_or_fail "extract --value-norms (gpt2)" vng
  run vnb extract --model "$REF/bert" --ids 2,17,42,7,3 --threads 1 --value-norms --layers 1 --heads 0,2 -o "$OUT/vnb.npz"; ok_or_fail "extract --value-norms (bert, a selection)" vnb
else
  fail "reference models missing: $REF/gpt2"
fi
run vnp process value-norm "$OUT/vn.npz" -o "$OUT/vnp.npz";                   ok_or_fail "process value-norm" vnp
run vnpn process value-norm "$OUT/vn.npz" -o "$OUT/vnpn.npz" --normalize;      ok_or_fail "process value-norm --normalize" vnpn
if "$PY" - "$OUT" "$MODEL" "$REF" <<'PY'
import json, sys
import numpy as np
o, model, ref = sys.argv[1:4]
def st(path):
    b = open(path, "rb").read(); n = int.from_bytes(b[:8], "little"); h = json.loads(b[8:8 + n]); out = {}
    for k, v in h.items():
        if k == "__metadata__": continue
        s, e = v["data_offsets"]; assert v["dtype"] == "F32", (k, v["dtype"])
        out[k] = np.frombuffer(b[8 + n + s:8 + n + e], dtype=np.float32).reshape(v["shape"]).astype(np.float64)
    return out
# llama (stories260K): layer 0 input = embeddings
z = np.load(f"{o}/vn.npz"); w = st(f"{model}/model.safetensors"); cfg = json.load(open(f"{model}/config.json"))
H, KV, d = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
h0 = w["model.embed_tokens.weight"][z["input_ids"]]
x = h0 / np.sqrt((h0 ** 2).mean(-1, keepdims=True) + cfg["rms_norm_eps"]) * w["model.layers.0.input_layernorm.weight"]
v = (x @ w["model.layers.0.self_attn.v_proj.weight"].T).reshape(len(h0), KV, d)
wo = w["model.layers.0.self_attn.o_proj.weight"]
ref_norm = np.stack([np.linalg.norm(v[:, h // (H // KV)] @ wo[:, h * d:(h + 1) * d].T, axis=-1) for h in range(H)])
vn = z["value_norms"]
assert vn.shape == (cfg["num_hidden_layers"], H, len(h0)), vn.shape
err = np.abs(vn[0] - ref_norm).max(); assert err < 1e-4, err
print(f"# llama layer 0 value norms: max |diff| {err:.2e}")
p = np.load(f"{o}/vnp.npz"); assert np.abs(p["attention"] - z["attention"] * vn[:, :, None, :]).max() < 1e-5
pn = np.load(f"{o}/vnpn.npz")["attention"]; assert np.allclose(pn.sum(-1), 1, atol=1e-5)
assert json.loads(str(p["meta"]))["process"][0]["op"] == "value-norm"
# gpt2: layer 0 input = wte + wpe
g = np.load(f"{o}/vng.npz"); w = st(f"{ref}/gpt2/model.safetensors"); cfg = json.load(open(f"{ref}/gpt2/config.json"))
H, D = cfg["n_head"], cfg["n_embd"]; d = D // H; ids = g["input_ids"]
pre = "transformer." if "transformer.wte.weight" in w else ""
h0 = w[pre + "wte.weight"][ids] + w[pre + "wpe.weight"][np.arange(len(ids))]
mu = h0.mean(-1, keepdims=True); var = h0.var(-1, keepdims=True)
x = (h0 - mu) / np.sqrt(var + cfg.get("layer_norm_epsilon", 1e-5)) * w[pre + "h.0.ln_1.weight"] + w[pre + "h.0.ln_1.bias"]
qkv = x @ w[pre + "h.0.attn.c_attn.weight"] + w[pre + "h.0.attn.c_attn.bias"]
v = qkv[:, 2 * D:].reshape(len(ids), H, d); cp = w[pre + "h.0.attn.c_proj.weight"]
ref_norm = np.stack([np.linalg.norm(v[:, h] @ cp[h * d:(h + 1) * d], axis=-1) for h in range(H)])
err = np.abs(g["value_norms"][0] - ref_norm).max(); assert err < 1e-4, err
print(f"# gpt2 layer 0 value norms: max |diff| {err:.2e}")
b = np.load(f"{o}/vnb.npz"); assert b["value_norms"].shape == (1, 2, 5) and (b["value_norms"] > 0).all()
PY
then pass "value_norms equal numpy's ||f_h(x_j)|| (llama, gpt2 layer 0); value-norm = alpha * norm"; else fail "value norms"; fi
if [ -d "$REF/t5" ]; then
  expect_error "--value-norms of an encoder-decoder is refused" "$OUT/bad.npz" "encoder-decoder" -- \
    extract --model "$REF/t5" --ids 5,6,7 --value-norms -o "$OUT/bad.npz"
fi
if [ -d "$REF/opt" ]; then
  expect_error "--value-norms of an unsupported family names it" "$OUT/bad.npz" "model_type 'opt'.*supported" -- \
    extract --model "$REF/opt" --ids 5,6,7 --value-norms -o "$OUT/bad.npz"
fi

run help process --help
[ "$rc" -eq 0 ] && grep -q "atlas process flow" "$OUT/help.out" && pass "process --help shows examples" || fail "process --help"
for op in aggregate words rollout flow diff slice topk value-norm; do
  run "help_$op" process "$op" --help
  [ "$rc" -eq 0 ] && grep -q "Example" "$OUT/help_$op.out" || { fail "process $op --help"; continue; }
done
pass "every process op's --help exits 0 with an example"
finish
