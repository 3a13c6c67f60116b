#!/usr/bin/python3
"""Attention flow: `atlas process flow` against the reference approach, in the same run.

The reference implementation of Abnar & Zuidema (2020) (samiraabnar/attention_flow,
attention_graph_util.py) builds a networkx DiGraph of the layered attention graph and calls
networkx.maximum_flow_value once per (output, input) pair. This script builds the same graph from
the same input -- a random row-stochastic 12-layer attention NPZ made with numpy -- times networkx on
a sample of pairs, times atlas on all pairs, checks that the values agree, and prints the per-pair
ratio and the time for all T x T pairs.

  /usr/bin/python3 bench/bench_flow.py [--atlas build/bin/atlas] [--layers 12] [--tokens 128]
                                       [--heads 2] [--pairs 8] [--seed 0]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

try:
    import networkx as nx
except ImportError:  # Debian: python3-networkx
    sys.exit("bench_flow: needs networkx (apt install python3-networkx)")


def make_input(path, layers, heads, tokens, seed):
    rng = np.random.default_rng(seed)
    att = rng.random((layers, heads, tokens, tokens)).astype(np.float32)
    att /= att.sum(-1, keepdims=True)
    np.savez(path, attention=att, layers=np.arange(layers), heads=np.arange(heads),
             input_ids=np.arange(tokens), tokens=np.array([f"t{i}" for i in range(tokens)]),
             token_labels=np.array([f"t{i}" for i in range(tokens)]),
             offsets=-np.ones((tokens, 2), dtype=np.int64), special=np.zeros(tokens, dtype=bool))
    return att


def residual_matrices(att):
    a = att.astype(np.float64).mean(1)                      # head mean
    t = a.shape[-1]
    a = 0.5 * a + 0.5 * np.eye(t)                           # residual
    return a / a.sum(-1, keepdims=True)                     # rows re-normalised


def reference_graph(a):
    """As attention_graph_util.py: node (k, p); edge (k+1, p) -> (k, q) with capacity a[k][p][q]."""
    g = nx.DiGraph()
    layers, t, _ = a.shape
    for k in range(layers):
        for p in range(t):
            for q in range(t):
                g.add_edge((k + 1, p), (k, q), capacity=float(a[k, p, q]))
    return g


def run_atlas(binary, inp, out, threads):
    t0 = time.perf_counter()
    subprocess.run([binary, "process", "flow", inp, "-o", out, "--layers", "-1", "--threads", str(threads)],
                   check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--atlas", default=os.path.join(here, "..", "build", "bin", "atlas"))
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--pairs", type=int, default=8, help="networkx pairs to time (all pairs take hours)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    L, T = args.layers, args.tokens

    with tempfile.TemporaryDirectory() as tmp:
        inp = os.path.join(tmp, "in.npz")
        att = make_input(inp, L, args.heads, T, args.seed)
        a = residual_matrices(att)

        cores = os.cpu_count() or 1
        t_atlas_1 = run_atlas(args.atlas, inp, os.path.join(tmp, "f1.npz"), 1)
        t_atlas_n = run_atlas(args.atlas, inp, os.path.join(tmp, "fn.npz"), cores)
        ours = np.load(os.path.join(tmp, "fn.npz"))["attention"][0, 0]
        ours1 = np.load(os.path.join(tmp, "f1.npz"))["attention"][0, 0]
        assert np.array_equal(ours, ours1), "thread count changed the result"

        g = reference_graph(a)
        rng = np.random.default_rng(args.seed + 1)
        pairs = [(int(i), int(j)) for i, j in rng.integers(0, T, size=(args.pairs, 2))]
        t0 = time.perf_counter()
        ref = [nx.maximum_flow_value(g, (L, i), (0, j)) for i, j in pairs]
        t_nx = time.perf_counter() - t0

    err = max(abs(r - ours[i, j]) for r, (i, j) in zip(ref, pairs))
    n_pairs = T * T
    per_nx = t_nx / len(pairs)
    per_atlas_1 = t_atlas_1 / n_pairs
    result = {
        "case": f"{L} layers, {T} tokens, {args.heads} heads (random row-stochastic), output layer {L - 1}",
        "networkx_pairs_timed": len(pairs),
        "networkx_s_per_pair": per_nx,
        "networkx_all_pairs_s_estimated": per_nx * n_pairs,
        "atlas_all_pairs_s_1_thread": t_atlas_1,
        f"atlas_all_pairs_s_{cores}_threads": t_atlas_n,
        "atlas_s_per_pair_1_thread": per_atlas_1,
        "ratio_per_pair_networkx_over_atlas_1_thread": per_nx / per_atlas_1,
        "max_abs_difference_vs_networkx": err,
    }
    print(json.dumps(result, indent=2))
    print(f"flow {L}x{T}: atlas all {n_pairs} pairs {t_atlas_n:.2f} s ({cores} threads), {t_atlas_1:.2f} s (1 thread); "
          f"networkx {per_nx:.3f} s/pair -> atlas is {per_nx / per_atlas_1:.0f}x faster per pair (1 thread); "
          f"max |diff| {err:.2e}")
    if err > 1e-5:
        sys.exit("bench_flow: atlas and networkx disagree")


if __name__ == "__main__":
    main()
