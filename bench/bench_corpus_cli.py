#!/usr/bin/env python3
"""Corpus throughput, memory and start-up cost of the `atlas` CLI, each configuration a child process
(peak RSS from wait4's rusage, so every number is that process's own):

  throughput  64 documents x 128 tokens, --dtype float16, batch sizes 1, 8, 32 (float32 compute) and
              batch 8 with --compute-dtype bfloat16; tokens/s as the engine reports it (--json
              tokens_per_second: model load included, process start not) and by wall clock (process
              start included, as the reference numbers are), with ratios to the reference;
  startup     corpus mode (batch 1 and 8 from above) vs. a loop of 64 single-document
              `atlas extract --ids ...` processes;
  long        one 4096-token document on a Llama-shaped model, --dtype float16: peak RSS against the
              budget weights + 2 x one layer's attention in float32 + 300 MB, and wall time.

Standard library only. bench/run_corpus_bench.sh runs it after making the checkpoints; alone:

    python3 bench/bench_corpus_cli.py --atlas build/bin/atlas --model build/bench-data/gpt2-small \\
        --llama build/bench-data/llama-long
"""
import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

# Measured by the author on this machine class, not in this run: HF transformers eager,
# output_attentions=True, np.savez float16 per document, process start and model load included.
REFERENCE = {1: 350.0, 8: 390.0}
GOAL = {"float32": 2.0, "bfloat16": 3.0}


def run(argv, stdout_path):
    """Runs argv to completion; returns (wall seconds, peak RSS bytes, CPU seconds user + kernel)."""
    with open(stdout_path, "wb") as out:
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.PIPE)
        err = p.stderr.read()
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"bench_corpus_cli: '{' '.join(argv)}' exited {p.returncode}:\n{err.decode(errors='replace')}")
    return wall, usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime  # ru_maxrss: kilobytes on Linux


def write_corpus(path, docs, tokens, id_limit, seed):
    rng = random.Random(seed)
    ids = [[rng.randrange(id_limit) for _ in range(tokens)] for _ in range(docs)]
    with open(path, "w") as f:
        for d in ids:
            f.write(json.dumps({"ids": d}) + "\n")
    return ids


def corpus_run(a, work, corpus, batch, compute_dtype, model=None):
    store = os.path.join(work, "store")
    shutil.rmtree(store, ignore_errors=True)  # an existing store would be resumed, i.e. skipped
    out = os.path.join(work, "summary.json")
    wall, rss, cpu = run([a.atlas, "extract", "--model", model or a.model, "--input", corpus, "-o", store,
                     "--dtype", "float16", "--compute-dtype", compute_dtype, "--batch-size", str(batch),
                     "--threads", str(a.threads), "--json", "--quiet"], out)
    with open(out) as f:
        s = json.load(f)
    store_bytes = sum(os.path.getsize(os.path.join(store, n)) for n in os.listdir(store))
    shutil.rmtree(store)
    return dict(wall=wall, rss=rss, cores=cpu / wall, tokens=s["tokens"], tps=s["tokens_per_second"], load=s["seconds_load"],
                model=s["seconds_model"], total=s["seconds_total"], store=store_bytes)


def mib(n):
    return n / 2**20


def throughput(a, work, corpus):
    configs = [(1, "float32"), (8, "float32"), (32, "float32"), (8, "bfloat16")]
    runs = {c: [] for c in configs}
    for _ in range(a.reps):  # round-robin, so that a noisy minute hits every configuration alike
        for c in configs:
            runs[c].append(corpus_run(a, work, corpus, *c))
    med = {}
    for c in configs:
        r = runs[c]
        med[c] = {k: statistics.median(x[k] for x in r) for k in r[0]}
        med[c]["wall_tps"] = statistics.median(x["tokens"] / x["wall"] for x in r)
    base = med[(8, "float32")]
    print(f"\n[throughput] {a.docs} documents x {a.tokens} tokens, --dtype float16, {a.threads} threads, "
          f"median of {a.reps} run(s) each, every run a fresh process")
    print("  batch  compute    tokens/s  tokens/s   load    model   total   wall   peak RSS   cores   vs batch 8")
    print("                    (engine)  (wall)      s       s       s       s     MiB        busy    float32")
    for c in configs:
        m = med[c]
        print(f"  {c[0]:>5}  {c[1]:<9} {m['tps']:>8.0f}  {m['wall_tps']:>8.0f}  {m['load']:>6.2f}  {m['model']:>6.2f}"
              f"  {m['total']:>6.2f}  {m['wall']:>5.1f}  {mib(m['rss']):>8.0f}   {m['cores']:>5.2f}   "
              f"{m['wall_tps'] / base['wall_tps']:>6.2f}x")
    print("  (cores busy: CPU seconds / wall seconds; above what the work needs when OpenMP threads spin-wait for "
          "a core that another process holds)")
    print(f"  bfloat16 vs float32 at batch 8: {med[(8, 'bfloat16')]['wall_tps'] / base['wall_tps']:.2f}x tokens/s "
          f"(model time {base['model']:.2f} s -> {med[(8, 'bfloat16')]['model']:.2f} s)")
    print("  vs HF transformers eager + output_attentions + np.savez float16 per document "
          "(reference, not measured in this run; process start and load included, so our wall tokens/s):")
    for c in configs:
        ref = REFERENCE.get(c[0])
        if ref is None:
            continue
        ratio = med[c]["wall_tps"] / ref
        goal = GOAL[c[1]]
        print(f"    batch {c[0]:>2} {c[1]:<9} {med[c]['wall_tps']:>6.0f} vs {ref:.0f} tokens/s: {ratio:.2f}x "
              f"(goal >= {goal:.0f}x: {'met' if ratio >= goal else 'missed'})")
    return med


def startup(a, work, ids, med):
    store = os.path.join(work, "single")
    os.makedirs(store, exist_ok=True)
    out = os.path.join(work, "single.json")
    walls, totals, loads, models, rss = [], [], [], [], []
    t0 = time.perf_counter()
    for k, d in enumerate(ids):
        wall, peak, _ = run([a.atlas, "extract", "--model", a.model, "--ids", ",".join(map(str, d)), "-o",
                          os.path.join(store, f"doc{k}.npz"), "--dtype", "float16", "--threads", str(a.threads),
                          "--json"], out)
        with open(out) as f:
            s = json.load(f)
        walls.append(wall)
        totals.append(s["seconds_total"])
        loads.append(s["seconds_load"])
        models.append(s["seconds_model"])
        rss.append(peak)
    loop = time.perf_counter() - t0
    shutil.rmtree(store)
    n = len(ids)
    print(f"\n[startup] corpus mode vs. a loop of {n} single-document `atlas extract --ids ...` processes "
          f"(--dtype float16, {a.threads} threads)")
    print(f"  loop of {n} processes      {loop:7.1f} s   {n * a.tokens / loop:6.0f} tokens/s   (baseline)")
    for b in (1, 8):
        m = med[(b, "float32")]
        print(f"  corpus mode, batch {b:<2}     {m['wall']:7.1f} s   {m['wall_tps']:6.0f} tokens/s   "
              f"{loop / m['wall']:5.1f}x faster")
    med_wall, med_total = statistics.median(walls), statistics.median(totals)
    print(f"  one process (median): {med_wall:.2f} s wall = {med_wall - med_total:.2f} s process start + model "
          f"runtime dlopen, {statistics.median(loads):.2f} s model load, {statistics.median(models):.2f} s forward, "
          f"{med_total - statistics.median(loads) - statistics.median(models):.2f} s rest; peak RSS "
          f"{mib(statistics.median(rss)):.0f} MiB")


def long_text(a, work):
    with open(os.path.join(a.llama, "config.json")) as f:
        cfg = json.load(f)
    heads, t = cfg["num_attention_heads"], a.long_tokens
    corpus = os.path.join(work, "long.jsonl")
    write_corpus(corpus, 1, t, a.id_limit, 7)
    r = corpus_run(a, work, corpus, 1, "float32", model=a.llama)
    weights = os.path.getsize(os.path.join(a.llama, "model.safetensors"))
    attention = 4 * heads * t * t
    budget = weights + 2 * attention + 300 * 2**20
    print(f"\n[long] one {t}-token document, {cfg['architectures'][0]} {cfg['num_hidden_layers']} layers x {heads} "
          f"heads, --dtype float16, {a.threads} threads")
    print(f"  peak RSS   {mib(r['rss']):7.0f} MiB")
    print(f"  budget     {mib(budget):7.0f} MiB = weights {mib(weights):.0f} + 2 x attention {mib(attention):.0f} "
          f"(4 B x {heads} x {t} x {t}) + 300")
    print(f"  ratio      {r['rss'] / budget:7.2f}x budget ({'within' if r['rss'] <= budget else 'over'})")
    print(f"  wall time  {r['wall']:7.1f} s ({r['cores']:.2f} cores busy) (load {r['load']:.2f} s, model {r['model']:.2f} s, engine total "
          f"{r['total']:.2f} s), {r['tokens'] / r['wall']:.0f} tokens/s; store {mib(r['store']):.0f} MiB")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--atlas", required=True, help="the atlas binary")
    ap.add_argument("--model", required=True, help="GPT-2-small-shaped model folder")
    ap.add_argument("--llama", help="Llama-shaped model folder with >= --long-tokens positions (long case)")
    ap.add_argument("--parts", default="throughput,startup,long")
    ap.add_argument("--docs", type=int, default=64)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--long-tokens", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=1, help="runs of each throughput configuration (median)")
    ap.add_argument("--id-limit", type=int, default=1000,
                    help="token ids are drawn below this (the bench models carry the 1000-token reference tokenizer)")
    a = ap.parse_args()
    parts = a.parts.split(",")
    work = tempfile.mkdtemp(prefix="atlas-bench-cli-")
    try:
        corpus = os.path.join(work, "corpus.jsonl")
        ids = write_corpus(corpus, a.docs, a.tokens, a.id_limit, 42)
        med = throughput(a, work, corpus) if "throughput" in parts or "startup" in parts else None
        if "startup" in parts:
            startup(a, work, ids, med)
        if "long" in parts and a.llama:
            long_text(a, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
