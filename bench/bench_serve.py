#!/usr/bin/env python3
"""Latency of `atlas serve`: request -> rendered SVG on a BERT-base-shaped model with random weights.

Writes a BertModel checkpoint (12 layers, 12 heads, 768 hidden, 3072 intermediate, vocab 30522,
512 positions; ~110 M parameters, ~420 MiB float32) with numpy, a config.json and a vocab.txt (the
tiny reference BERT's 1000 entries padded with [unused] pieces), starts `atlas serve` on it and times,
over HTTP on one machine:

  new text    POST /api/render (inline SVG) for a 64-token text not seen before: tokenize, forward
              pass, NPZ, render (the path a user typing a sentence takes; debounced on the page)
  re-render   the same text, another layer/head: the cached result, render only
  run only    POST /api/run for a new 64-token text (tokens + the chosen matrix as JSON)
  extend      a 500-token text, then the same text with a few words appended: the ratio of the
              second request's time to a full run of a new 500-token text. BERT is an encoder
              (appending text changes the attention of every position), so the server recomputes
              and the ratio is ~1.
  causal extend
              the same on a GPT-2-small-shaped model with random weights (GPT2LMHeadModel, 12 layers,
              12 heads, 768 hidden, vocab 50257, 1024 positions; written by bench/make_gpt2_small.py
              with the tiny reference GPT-2's tokenizer, whose ' word' pieces make one token per
              word): 500 tokens, then +4 tokens. The server keeps the key/value cache of each causal
              model's last run, so the extension runs only the 4 new tokens against the cached keys
              and values (the attention rows of the first 500 come from the previous run); the
              issue's target is extend / full < 0.20. The responses' `reused_tokens` are printed.
              Each result (12 x 12 x 504 x 504 float32: 146 MB) is kept in memory; its NPZ is written
              only when exported. Timing starts with the server's result cache (--cache 8) full of
              500-token results (warm: each new result then takes the buffer of the one it evicts;
              on the VM first touching a fresh 146 MB cost 150-300 ms, more than the extension).
              --work-dir is a folder under /dev/shm when there is one (--causal-work-dir disk: the
              server's default temp folder).

  gemm        with --gemm both (the default): the three timings on a server started with
              `--gemm onednn` (its default: oneDNN's sgemm on linear weights stored transposed) and
              on one with `--gemm openblas` (at::linear), their ratios and the largest attention
              difference between the two.
  bfloat16    with --compute-dtype both: the same three timings on a server started with
              `--compute-dtype bfloat16`, their ratios to float32, and the largest absolute difference
              of the attention (every layer and head) between the two servers for one text.

    /usr/bin/python3 bench/bench_serve.py --atlas build/bin/atlas [--requests 40] [--model-dir /tmp/bert-base-rand]
        [--compute-dtype float32|bfloat16|both] [--gemm onednn|openblas|both] [--no-extend]
        [--causal-model-dir /tmp/atlas-bench-gpt2-small] [--causal-work-dir shm|disk|DIR] [--only-causal]

Prints p50 / p95 in milliseconds and the server's CPU time per request (user + system, from /proc:
less sensitive to other load on a shared machine than wall time); nothing is asserted (a
benchmark, not a test). The server is started as users start it, so `atlas`'s choice of OpenBLAS
kernels applies (README, "Platform notes"); ATLAS_KEEP_BLAS_CORETYPE=1 in the environment measures
OpenBLAS's own choice instead.
"""
import argparse
import json
import os
import random
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import io
import urllib.request

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REFERENCE_VOCAB = os.path.join(HERE, "..", "..", "shared", "reference", "models", "bert", "vocab.txt")
REFERENCE_GPT2_VOCAB = os.path.join(HERE, "..", "..", "shared", "reference", "models", "gpt2", "vocab.json")


def bert_specs(L=12, d=768, ff=3072, vocab=30522, positions=512):
    specs = [("embeddings.word_embeddings.weight", (vocab, d)),
             ("embeddings.position_embeddings.weight", (positions, d)),
             ("embeddings.token_type_embeddings.weight", (2, d)),
             ("embeddings.LayerNorm.weight", (d,)), ("embeddings.LayerNorm.bias", (d,))]
    for i in range(L):
        p = f"encoder.layer.{i}."
        for name in ("query", "key", "value"):
            specs += [(p + f"attention.self.{name}.weight", (d, d)), (p + f"attention.self.{name}.bias", (d,))]
        specs += [(p + "attention.output.dense.weight", (d, d)), (p + "attention.output.dense.bias", (d,)),
                  (p + "attention.output.LayerNorm.weight", (d,)), (p + "attention.output.LayerNorm.bias", (d,)),
                  (p + "intermediate.dense.weight", (ff, d)), (p + "intermediate.dense.bias", (ff,)),
                  (p + "output.dense.weight", (d, ff)), (p + "output.dense.bias", (d,)),
                  (p + "output.LayerNorm.weight", (d,)), (p + "output.LayerNorm.bias", (d,))]
    specs += [("pooler.dense.weight", (d, d)), ("pooler.dense.bias", (d,))]
    return specs


def write_model(out):
    os.makedirs(out, exist_ok=True)
    if os.path.exists(os.path.join(out, "model.safetensors")):
        return
    rng = np.random.default_rng(0)
    specs = bert_specs()
    header, offset, arrays = {}, 0, []
    for name, shape in specs:
        if name.endswith("LayerNorm.weight"):
            a = np.ones(shape, np.float32)
        elif name.endswith(".bias") or len(shape) == 1:
            a = np.zeros(shape, np.float32)
        else:
            a = (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float32)
        n = a.nbytes
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
        arrays.append(a)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = os.path.join(out, ".model.safetensors.tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for a in arrays:
            f.write(a.tobytes())
    os.replace(tmp, os.path.join(out, "model.safetensors"))
    config = {"architectures": ["BertModel"], "model_type": "bert", "hidden_size": 768, "num_hidden_layers": 12,
              "num_attention_heads": 12, "intermediate_size": 3072, "hidden_act": "gelu",
              "max_position_embeddings": 512, "type_vocab_size": 2, "vocab_size": 30522, "layer_norm_eps": 1e-12,
              "pad_token_id": 0, "position_embedding_type": "absolute", "torch_dtype": "float32"}
    json.dump(config, open(os.path.join(out, "config.json"), "w"), indent=2)
    vocab = open(REFERENCE_VOCAB, encoding="utf-8").read().split("\n")
    vocab = [v for v in vocab if v]
    vocab += [f"[unused{i}]" for i in range(30522 - len(vocab))]
    open(os.path.join(out, "vocab.txt"), "w", encoding="utf-8").write("\n".join(vocab) + "\n")
    json.dump({"do_lower_case": True, "tokenizer_class": "BertTokenizer"},
              open(os.path.join(out, "tokenizer_config.json"), "w"))


def write_causal_model(out):
    """GPT-2 small with random weights (bench/make_gpt2_small.py), written once."""
    if os.path.exists(os.path.join(out, "model.safetensors")):
        return
    subprocess.run([sys.executable, os.path.join(HERE, "make_gpt2_small.py"), "--out", out], check=True,
                   stdout=subprocess.DEVNULL)


def gpt2_words():
    """Words that the tiny GPT-2 tokenizer has as one ' word' token."""
    vocab = json.load(open(REFERENCE_GPT2_VOCAB, encoding="utf-8"))
    return sorted(k[1:] for k in vocab if k.startswith("\u0120") and re.fullmatch(r"[a-z]{2,}", k[1:]))


def words_of_vocab():
    vocab = [v for v in open(REFERENCE_VOCAB, encoding="utf-8").read().split("\n") if v]
    return [v for v in vocab if re.fullmatch(r"[a-z]{2,}", v)]


LAST_PHASES = {}   # the last response's Server-Timing header: phase -> milliseconds


def post(url, body, raw=False):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=600) as r:
        data = r.read()
        timing = r.headers.get("Server-Timing", "")
    dt = time.perf_counter() - t0
    LAST_PHASES.clear()
    for part in filter(None, (p.strip() for p in timing.split(","))):
        name, _, dur = part.partition(";dur=")
        LAST_PHASES[name] = float(dur or 0)
    LAST_PHASES["client"] = dt * 1000
    return dt, (data if raw else json.loads(data))


def report_phases(phases):
    """The median milliseconds of each Server-Timing phase over a list of {phase: ms}, the client's
    (request to parsed response), and the p95 of the phases that vary most (forward, render)."""
    names = [n for n in phases[0] if n != "client"]
    med = {n: statistics.median(p.get(n, 0.0) for p in phases) for n in names + ["client"]}
    parts = [f"{n} {med[n]:.1f}" for n in names]
    print(f"  {'':<32} phases (medians, ms): {', '.join(parts)}; client {med['client']:.1f}")
    tails = [f"{n} {pct([p.get(n, 0.0) for p in phases], 0.95):.1f}" for n in ("forward", "render", "total") if n in names]
    if tails:
        print(f"  {'':<32} p95 (ms): {', '.join(tails)}")


def pct(xs, q):
    xs = sorted(xs)
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def cpu_seconds(pid):
    """User + system CPU time of the server process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def report(name, seconds, cpu=None):
    ms = [s * 1000 for s in seconds]
    extra = f"   server CPU {cpu * 1000 / len(ms):7.1f} ms/request" if cpu is not None else ""
    print(f"{name:<34} n={len(ms):<3} p50 {pct(ms, 0.5):7.1f} ms   p95 {pct(ms, 0.95):7.1f} ms   "
          f"mean {statistics.mean(ms):7.1f} ms{extra}")


def text_maker(words, seed):
    """n_words random words of `words` joined by spaces, from a seeded generator."""
    rng = random.Random(seed)
    return lambda n_words: " ".join(rng.choice(words) for _ in range(n_words))


CACHE_ENTRIES = 8   # the servers' --cache


def start_server(a, model_dir, extra):
    """Starts `atlas serve` on a free port; returns (process, base URL)."""
    proc = subprocess.Popen([a.atlas, "serve", "--model", model_dir, "--port", "0", "--threads", str(a.threads),
                             "--cache", str(CACHE_ENTRIES)] + extra, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    m = re.search(r"listening on (\S+)", line)
    if not m:
        proc.kill()
        sys.exit(f"bench_serve: server did not start: {line} {proc.stderr.read()}")
    return proc, m.group(1).rstrip("/")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--atlas", default=os.path.join(HERE, "..", "build", "bin", "atlas"))
    ap.add_argument("--model-dir", default="/tmp/atlas-bench-bert-base")
    ap.add_argument("--requests", type=int, default=40)
    ap.add_argument("--causal-model-dir", default="/tmp/atlas-bench-gpt2-small")
    ap.add_argument("--causal-work-dir", default="shm",
                    help="--work-dir of the causal server: shm (a folder under /dev/shm), disk (the server's "
                         "default temp folder) or a folder")
    ap.add_argument("--only-causal", action="store_true", help="only the causal extend section")
    ap.add_argument("--threads", type=int, default=0, help="threads per forward pass (0: all cores)")
    ap.add_argument("--compute-dtype", default="float32", choices=["float32", "bfloat16", "both"],
                    help="the server's --compute-dtype; both: float32, then bfloat16, and their ratios")
    ap.add_argument("--gemm", default="both", choices=["onednn", "openblas", "both"],
                    help="the server's --gemm (float32 products); both (default): onednn, then openblas, and "
                         "their ratios")
    ap.add_argument("--no-extend", action="store_true", help="skip the 500-token extend timing")
    a = ap.parse_args()
    if a.only_causal:
        return causal_extend(a)

    t0 = time.perf_counter()
    write_model(a.model_dir)
    print(f"model: {a.model_dir} (BertModel 12 x 12, 768 hidden, random weights; written/checked in "
          f"{time.perf_counter() - t0:.1f} s)")
    text = text_maker(words_of_vocab(), 1)

    dtypes = ["float32", "bfloat16"] if a.compute_dtype == "both" else [a.compute_dtype]
    gemms = ["onednn", "openblas"] if a.gemm == "both" else [a.gemm]
    configs = []   # (dtype, gemm): --gemm applies to float32 only (bfloat16 runs under autocast)
    for dtype in dtypes:
        for gemm in gemms if dtype == "float32" else gemms[:1]:
            configs.append((dtype, gemm))
    results = {}
    probe = text(62)   # one text every server runs, to compare their attention
    for n, (dtype, gemm) in enumerate(configs):
        results[(dtype, gemm)] = run_server(a, dtype, gemm, text, probe, extend=(n == 0 and not a.no_extend))
    if len(gemms) == 2:
        compare(results[("float32", "onednn")], results[("float32", "openblas")], "--gemm onednn / openblas (float32)")
    if len(dtypes) == 2:
        compare(results[("bfloat16", gemms[0])], results[("float32", gemms[0])],
                f"bfloat16 / float32 (--gemm {gemms[0]})")
    if not a.no_extend:
        causal_extend(a)


def compare(num, den, title):
    """Prints the median ratios num / den of the three timings and the largest attention difference."""
    print(f"\n{title} (medians; server CPU per request):")
    for key, name in (("new", "new 64-token text -> SVG"), ("rerender", "same text, other layer/head -> SVG"),
                      ("run", "new 64-token text -> /api/run JSON")):
        print(f"  {name:<34} wall {statistics.median(num[key]) / statistics.median(den[key]):.2f}   "
              f"CPU {num['cpu_' + key] / den['cpu_' + key]:.2f}")
    diff = np.abs(num["probe"] - den["probe"])
    print(f"  attention difference (one 64-token text, every layer and head): max |diff| "
          f"{diff.max():.2e}, mean {diff.mean():.1e}")


def run_server(a, dtype, gemm, text, probe, extend):
    proc, url = start_server(a, a.model_dir, ["--compute-dtype", dtype, "--gemm", gemm])
    out = {}
    try:
        print(f"\n== --compute-dtype {dtype} --gemm {gemm}: server {url}")

        # Warm-up, and check the token count: 62 words of the reference vocabulary + [CLS] [SEP].
        _, r = post(url + "/api/run", {"text": text(62)})
        print(f"text: {len(r['tokens'])} tokens")
        for _ in range(3):
            post(url + "/api/render", {"text": text(62), "kind": "heatmap", "layer": "5", "head": "3",
                                       "format": "svg", "inline": True})
        _, npz = post(url + "/api/npz", {"text": probe}, raw=True)
        out["probe"] = np.load(io.BytesIO(npz))["attention"].astype(np.float64)

        new, rerender, run_only = [], [], []
        phases_new, phases_re, phases_run = [], [], []
        cpu_new = cpu_re = 0.0
        for i in range(a.requests):
            t = text(62)
            c0 = cpu_seconds(proc.pid)
            dt, _ = post(url + "/api/render", {"text": t, "kind": "heatmap", "layer": str(i % 12), "head": str(i % 12),
                                               "format": "svg", "inline": True})
            c1 = cpu_seconds(proc.pid)
            new.append(dt)
            phases_new.append(dict(LAST_PHASES))
            dt, _ = post(url + "/api/render", {"text": t, "kind": "heatmap", "layer": str((i + 5) % 12),
                                               "head": "mean", "format": "svg", "inline": True})
            rerender.append(dt)
            phases_re.append(dict(LAST_PHASES))
            cpu_new += c1 - c0
            cpu_re += cpu_seconds(proc.pid) - c1
        c0 = cpu_seconds(proc.pid)
        for i in range(a.requests):
            dt, _ = post(url + "/api/run", {"text": text(62), "layer": "3", "head": "mean"})
            run_only.append(dt)
            phases_run.append(dict(LAST_PHASES))
        cpu_run = cpu_seconds(proc.pid) - c0
        print(f"load average before timing: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        report("new 64-token text -> SVG", new, cpu_new)
        report_phases(phases_new)
        report("same text, other layer/head -> SVG", rerender, cpu_re)
        report_phases(phases_re)
        report("new 64-token text -> /api/run JSON", run_only, cpu_run)
        report_phases(phases_run)
        out.update(new=new, rerender=rerender, run=run_only, cpu_new=cpu_new, cpu_rerender=cpu_re, cpu_run=cpu_run)

        if extend:
            full, ext = [], []
            for _ in range(max(3, a.requests // 8)):
                base = text(498)
                dt_full, r = post(url + "/api/run", {"text": base, "layer": "0", "head": "0"})
                dt_ext, r2 = post(url + "/api/run", {"text": base + " " + text(4), "layer": "0", "head": "0"})
                full.append(dt_full)
                ext.append(dt_ext)
            print(f"\nextend: {len(r['tokens'])} -> {len(r2['tokens'])} tokens")
            report("500-token text (full run)", full)
            report("same text + 4 words", ext)
            print(f"extend / full (medians): {statistics.median(ext) / statistics.median(full):.2f} "
                  f"(an encoder: every request recomputes)")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return out


def causal_extend(a):
    t0 = time.perf_counter()
    write_causal_model(a.causal_model_dir)
    print(f"\ncausal model: {a.causal_model_dir} (GPT2LMHeadModel 12 x 12, 768 hidden, vocab 50257, random "
          f"weights; written/checked in {time.perf_counter() - t0:.1f} s)")
    text = text_maker(gpt2_words(), 2)

    work = []
    made = None
    if a.causal_work_dir == "shm" and os.path.isdir("/dev/shm"):
        made = tempfile.mkdtemp(prefix="atlas-bench-serve-", dir="/dev/shm")
        work = ["--work-dir", made]
    elif a.causal_work_dir not in ("shm", "disk"):
        work = ["--work-dir", a.causal_work_dir]
    print(f"work dir: {work[1] if work else 'the server default (a temp folder)'}")
    proc, url = start_server(a, a.causal_model_dir, ["--max-tokens", "1024"] + work)
    try:
        post(url + "/api/run", {"text": text(64), "layer": "0", "head": "0"})   # warm-up
        t_fill = time.perf_counter()
        for _ in range(CACHE_ENTRIES):   # fill the result cache (steady state: every result evicts one)
            post(url + "/api/run", {"text": text(500), "layer": "0", "head": "0"})
        print(f"result cache filled with {CACHE_ENTRIES} 500-token results in {time.perf_counter() - t_fill:.1f} s")
        full, ext, full_model, ext_model, reused_full, reused_ext = [], [], [], [], [], []
        n_full = n_ext = 0
        load = os.getloadavg()[0]
        for _ in range(max(3, a.requests // 8)):
            base = text(500)
            dt_full, r = post(url + "/api/run", {"text": base, "layer": "0", "head": "0"})
            dt_ext, r2 = post(url + "/api/run", {"text": base + " " + text(4), "layer": "0", "head": "0"})
            full.append(dt_full)
            ext.append(dt_ext)
            full_model.append(r["seconds_model"])
            ext_model.append(r2["seconds_model"])
            reused_full.append(r.get("reused_tokens", 0))
            reused_ext.append(r2.get("reused_tokens", 0))
            n_full, n_ext = len(r["tokens"]), len(r2["tokens"])
        print(f"load average before timing: {load:.1f} on {os.cpu_count()} cores")
        print(f"causal extend: {n_full} -> {n_ext} tokens; reused tokens: full runs {sorted(set(reused_full))}, "
              f"extensions {sorted(set(reused_ext))}")
        report("500-token text (full run)", full)
        report("same text + 4 words (kv cache)", ext)
        print(f"forward pass alone (medians): full {statistics.median(full_model) * 1000:.1f} ms, "
              f"extension {statistics.median(ext_model) * 1000:.1f} ms")
        print(f"causal extend / full (medians): {statistics.median(ext) / statistics.median(full):.3f} "
              f"(target < 0.20)")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if made:
            shutil.rmtree(made, ignore_errors=True)


if __name__ == "__main__":
    main()
