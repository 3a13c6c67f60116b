#!/usr/bin/env python3
"""Writes a GPT-2-shaped checkpoint with random float32 weights, for load-time and memory benchmarks.

Defaults give GPT-2 small (12 layers, 768 hidden, 12 heads, vocab 50257, 1024 positions: ~475 MiB).
Needs numpy only: the safetensors file is written by hand (8-byte little-endian header length, JSON
header with dtype/shape/data_offsets, then the data buffer). The tokenizer files are copied from the
tiny reference GPT-2 (vocab 1000), so feed token ids with `atlas extract --ids ...`.

    python3 bench/make_gpt2_small.py --out /tmp/gpt2s
    /usr/bin/time -v build/bin/atlas extract --model /tmp/gpt2s --ids 1,2,3,4 -o /tmp/x.npz
"""
import argparse
import json
import os
import shutil
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_REFERENCE = os.path.join(HERE, "..", "..", "shared", "reference", "models", "gpt2")
TOKENIZER_FILES = ["vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json",
                   "generation_config.json"]


def tensor_specs(layers, hidden, vocab, positions, inner):
    """(name, shape, kind) in the order HF's GPT2LMHeadModel saves them; lm_head is tied (not saved)."""
    specs = [("transformer.wte.weight", (vocab, hidden), "weight"),
             ("transformer.wpe.weight", (positions, hidden), "weight")]
    for i in range(layers):
        h = f"transformer.h.{i}."
        specs += [
            (h + "ln_1.weight", (hidden,), "ln_weight"),
            (h + "ln_1.bias", (hidden,), "bias"),
            (h + "attn.c_attn.weight", (hidden, 3 * hidden), "weight"),
            (h + "attn.c_attn.bias", (3 * hidden,), "bias"),
            (h + "attn.c_proj.weight", (hidden, hidden), "weight"),
            (h + "attn.c_proj.bias", (hidden,), "bias"),
            (h + "ln_2.weight", (hidden,), "ln_weight"),
            (h + "ln_2.bias", (hidden,), "bias"),
            (h + "mlp.c_fc.weight", (hidden, inner), "weight"),
            (h + "mlp.c_fc.bias", (inner,), "bias"),
            (h + "mlp.c_proj.weight", (inner, hidden), "weight"),
            (h + "mlp.c_proj.bias", (hidden,), "bias"),
        ]
    specs += [("transformer.ln_f.weight", (hidden,), "ln_weight"),
              ("transformer.ln_f.bias", (hidden,), "bias")]
    return specs


def write_safetensors(path, specs, rng, std):
    header = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape, _ in specs:
        nbytes = 4 * int(np.prod(shape))
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # keeps the data buffer 8-byte aligned, like the safetensors writer
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for _, shape, kind in specs:  # one tensor at a time: memory stays at the largest tensor
            if kind == "ln_weight":
                a = 1.0 + rng.normal(0.0, std, shape)
            else:
                a = rng.normal(0.0, std, shape)
            f.write(np.ascontiguousarray(a, dtype="<f4").tobytes())
    return offset


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output model folder (created)")
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--hidden", type=int, default=768)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--vocab", type=int, default=50257)
    ap.add_argument("--positions", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--std", type=float, default=0.02, help="weight init std (HF initializer_range)")
    ap.add_argument("--reference", default=DEFAULT_REFERENCE,
                    help="model folder to take config.json and the tokenizer files from")
    args = ap.parse_args()
    if args.hidden % args.heads:
        sys.exit(f"--hidden {args.hidden} is not a multiple of --heads {args.heads}")

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.reference, "config.json")) as f:
        config = json.load(f)
    inner = 4 * args.hidden
    config.update(n_layer=args.layers, n_embd=args.hidden, n_head=args.heads, vocab_size=args.vocab,
                  n_positions=args.positions, n_inner=None, initializer_range=args.std)
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    for name in TOKENIZER_FILES:
        src = os.path.join(args.reference, name)
        if os.path.exists(src):
            shutil.copyfile(src, os.path.join(args.out, name))

    rng = np.random.default_rng(args.seed)
    specs = tensor_specs(args.layers, args.hidden, args.vocab, args.positions, inner)
    nbytes = write_safetensors(os.path.join(args.out, "model.safetensors"), specs, rng, args.std)
    params = nbytes // 4
    print(f"{args.out}/model.safetensors: {len(specs)} tensors, {params / 1e6:.1f} M parameters, "
          f"{nbytes / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
