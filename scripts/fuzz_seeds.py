#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora into OUT/<target>/ from the reference data (../shared) and
the repository (configs/styles, tests/fixtures, tests/fuzz/seeds). Nothing here goes into git: large
reference files are cut down (safetensors: header + a few bytes; tokenizer.json: vocabularies trimmed).
Usage: fuzz_seeds.py SOURCE_DIR SHARED_DIR OUT"""
import io, json, os, random, shutil, struct, sys, zipfile
from pathlib import Path

src, shared, out = (Path(a) for a in sys.argv[1:4])
ref = shared / "reference"
random.seed(1)


def put(target, name, data):
    d = out / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def small_npz(limit=64 * 1024):
    return sorted(p for p in (ref / "attention").rglob("*.npz") if p.stat().st_size <= limit)


# npz archives and their .npy members
for i, p in enumerate(small_npz()[:12]):
    put("npz", f"{p.parent.name}_{p.name}", p.read_bytes())
    with zipfile.ZipFile(p) as z:
        for info in z.infolist()[:4]:
            data = z.read(info)
            if len(data) <= 16 * 1024:
                put("npy", f"{p.parent.name}_{p.stem}_{info.filename}", data)

# safetensors: the header plus a few bytes of data
for p in sorted((ref / "models").rglob("*.safetensors")):
    raw = p.open("rb").read(8)
    n = struct.unpack("<Q", raw)[0]
    with p.open("rb") as f:
        data = f.read(8 + n)
    put("safetensors", f"{p.parent.name}_{p.name}_header", data)
    put("safetensors", f"{p.parent.name}_{p.name}_cut", data + b"\0" * 16)
    # a self-consistent small file: the header rewritten to shapes of one element
    header = json.loads(data[8:])
    off = 0
    small = {}
    for k, v in header.items():
        if k == "__metadata__":
            small[k] = v
            continue
        size = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}[v["dtype"]]
        small[k] = {"dtype": v["dtype"], "shape": [1], "data_offsets": [off, off + size]}
        off += size
        if len(small) > 6:
            break
    h = json.dumps(small).encode()
    h += b" " * (-len(h) % 8)
    put("safetensors", f"{p.parent.name}_{p.name}_small", struct.pack("<Q", len(h)) + h + b"\0" * off)

# sharded index: the reference one, plus one naming the fuzz target's own two tiny shards
for p in sorted((ref / "models").rglob("*.index.json")):
    put("sharded_index", f"{p.parent.name}_{p.name}", p.read_bytes())
put("sharded_index", "tiny.json", json.dumps({"metadata": {"total_size": 12}, "weight_map": {
    "a.weight": "model-00001-of-00002.safetensors", "b.weight": "model-00001-of-00002.safetensors",
    "c.weight": "model-00002-of-00002.safetensors"}}))

# pytorch_model.bin files and their pickles
for p in sorted((ref / "models").rglob("pytorch_model*.bin")):
    put("torch_bin", f"{p.parent.name}_{p.name}", p.read_bytes())
    with zipfile.ZipFile(p) as z:
        for n in z.namelist():
            if n.endswith("data.pkl"):
                put("pickle", f"{p.parent.name}_data.pkl", z.read(n))

# config.json
for p in sorted((ref / "models").rglob("config.json")):
    put("config", f"{p.parent.name}_{p.name}", p.read_bytes())
for p in sorted(ref.rglob("adapter_config.json")):
    put("adapter_config", f"{p.parent.parent.name}_{p.parent.name}.json", p.read_bytes())

# tokenizer.json, vocabularies trimmed to keep each execution fast
def trim(tok, n=400):
    model = tok.get("model") or {}
    t = model.get("type")
    if t in ("BPE", "WordPiece", "WordLevel") and isinstance(model.get("vocab"), dict):
        keep = dict(sorted(model["vocab"].items(), key=lambda kv: kv[1])[:n])
        model["vocab"] = keep
        if "merges" in model:
            ms = []
            for m in model["merges"]:
                a, b = m.split(" ", 1) if isinstance(m, str) else m
                if a in keep and b in keep and (a + b) in keep:
                    ms.append(m)
            model["merges"] = ms
    elif t == "Unigram":
        model["vocab"] = model["vocab"][:n]
        if model.get("unk_id") is not None and model["unk_id"] >= n:
            model["unk_id"] = 0
    ids = set(range(n))
    tok["added_tokens"] = [a for a in tok.get("added_tokens") or [] if a.get("id", 0) < n]
    return tok

texts = []
for d in sorted((ref / "tokenizers").iterdir()):
    tj = d / "tokenizer.json"
    if tj.is_file():
        tok = json.loads(tj.read_text())
        put("tokenizer_json", f"{d.name}_trimmed.json", json.dumps(trim(tok), ensure_ascii=False))
    cases = d / "cases.jsonl"
    if cases.is_file():
        for line in cases.read_text().splitlines()[:20]:
            try:
                c = json.loads(line)
            except ValueError:
                continue
            for k in ("text", "input", "a"):
                if isinstance(c.get(k), str):
                    texts.append(c[k])
                    break
stories = ref / "tokenizers" / "stories260K" / "tokenizer.json"
if stories.is_file():
    put("tokenizer_json", "stories260K.json", stories.read_bytes())
for i, t in enumerate(texts[:80]):
    put("tokenizer_text", f"case_{i:03d}", bytes([random.randrange(256)]) + t.encode())

# YAML styles
for p in sorted((src / "configs").rglob("*.yaml")):
    put("style", p.name, p.read_bytes())

# corpus: the fixtures (first byte = the target's mode: format and options)
for p in sorted((src / "tests" / "fixtures" / "corpus").iterdir()):
    if p.is_file() and p.stat().st_size < 64 * 1024 and p.suffix in (".txt", ".jsonl", ".csv", ".tsv"):
        mode = {".jsonl": 0, ".csv": 1, ".tsv": 2, ".txt": 3}[p.suffix]
        put("corpus", p.name, bytes([mode]) + p.read_bytes())

# the committed hand-made seeds
seeds = src / "tests" / "fuzz" / "seeds"
if seeds.is_dir():
    for d in sorted(seeds.iterdir()):
        for f in sorted(d.iterdir()):
            put(d.name, "committed_" + f.name, f.read_bytes())

for d in sorted(out.iterdir()):
    print(f"  seeds {d.name}: {len(list(d.iterdir()))}")
