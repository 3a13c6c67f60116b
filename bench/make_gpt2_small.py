#!/usr/bin/env python3
"""Writes a GPT-2- or Llama-shaped checkpoint with random float32 weights, for speed and memory benchmarks.

    --arch gpt2 (default): GPT-2 small, 12 layers, 768 hidden, 12 heads, vocab 50257, 1024 positions
                           (124 M parameters, ~475 MiB), GPT2LMHeadModel with the head tied.
    --arch llama:          LlamaForCausalLM, 8 layers, 512 hidden, 8 heads (4 key/value heads),
                           intermediate 1408, vocab 32000, 4096 positions (~58 M parameters, ~225 MiB);
                           for the long-text (4096-token) case.

Python's standard library only (no numpy): the safetensors file is written by hand (8-byte
little-endian header length, JSON header with dtype/shape/data_offsets, then the data buffer), and
the weights are slices, at random offsets, of one pool of 2^20 normal(0, std) floats (speed and
memory do not depend on the values; this keeps a 475 MiB file to a few seconds of Python).
The tokenizer files are copied from the tiny reference GPT-2 (vocab 1000): feed token ids, e.g.
JSONL records {"ids": [...]}, or `atlas extract --ids ...`.

    python3 bench/make_gpt2_small.py --out /tmp/gpt2s
    python3 bench/make_gpt2_small.py --arch llama --out /tmp/llama-long
    /usr/bin/time -v build/bin/atlas extract --model /tmp/gpt2s --ids 1,2,3,4 -o /tmp/x.npz
"""
import argparse
import array
import json
import os
import random
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_REFERENCE = os.path.join(HERE, "..", "..", "shared", "reference", "models", "gpt2")
TOKENIZER_FILES = ["vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json",
                   "generation_config.json"]
POOL = 1 << 20

DEFAULTS = {
    "gpt2": dict(layers=12, hidden=768, heads=12, kv_heads=12, intermediate=3072, vocab=50257, positions=1024),
    "llama": dict(layers=8, hidden=512, heads=8, kv_heads=4, intermediate=1408, vocab=32000, positions=4096),
}


def gpt2_specs(a):
    """(name, shape, kind) in the order HF's GPT2LMHeadModel saves them; lm_head is tied (not saved)."""
    d, inner = a.hidden, a.intermediate
    specs = [("transformer.wte.weight", (a.vocab, d), "weight"),
             ("transformer.wpe.weight", (a.positions, d), "weight")]
    for i in range(a.layers):
        h = f"transformer.h.{i}."
        specs += [
            (h + "ln_1.weight", (d,), "ln_weight"),
            (h + "ln_1.bias", (d,), "bias"),
            (h + "attn.c_attn.weight", (d, 3 * d), "weight"),
            (h + "attn.c_attn.bias", (3 * d,), "bias"),
            (h + "attn.c_proj.weight", (d, d), "weight"),
            (h + "attn.c_proj.bias", (d,), "bias"),
            (h + "ln_2.weight", (d,), "ln_weight"),
            (h + "ln_2.bias", (d,), "bias"),
            (h + "mlp.c_fc.weight", (d, inner), "weight"),
            (h + "mlp.c_fc.bias", (inner,), "bias"),
            (h + "mlp.c_proj.weight", (inner, d), "weight"),
            (h + "mlp.c_proj.bias", (d,), "bias"),
        ]
    specs += [("transformer.ln_f.weight", (d,), "ln_weight"),
              ("transformer.ln_f.bias", (d,), "bias")]
    return specs


def llama_specs(a):
    """HF LlamaForCausalLM's keys, lm_head untied."""
    d, ff = a.hidden, a.intermediate
    head_dim = d // a.heads
    kv = a.kv_heads * head_dim
    specs = [("model.embed_tokens.weight", (a.vocab, d), "weight")]
    for i in range(a.layers):
        p = f"model.layers.{i}."
        specs += [
            (p + "self_attn.q_proj.weight", (d, d), "weight"),
            (p + "self_attn.k_proj.weight", (kv, d), "weight"),
            (p + "self_attn.v_proj.weight", (kv, d), "weight"),
            (p + "self_attn.o_proj.weight", (d, d), "weight"),
            (p + "mlp.gate_proj.weight", (ff, d), "weight"),
            (p + "mlp.up_proj.weight", (ff, d), "weight"),
            (p + "mlp.down_proj.weight", (d, ff), "weight"),
            (p + "input_layernorm.weight", (d,), "ln_weight"),
            (p + "post_attention_layernorm.weight", (d,), "ln_weight"),
        ]
    specs += [("model.norm.weight", (d,), "ln_weight"), ("lm_head.weight", (a.vocab, d), "weight")]
    return specs


def gpt2_config(a, reference):
    with open(os.path.join(reference, "config.json")) as f:
        config = json.load(f)
    config.update(n_layer=a.layers, n_embd=a.hidden, n_head=a.heads, vocab_size=a.vocab,
                  n_positions=a.positions, n_inner=a.intermediate, initializer_range=a.std,
                  bos_token_id=a.vocab - 1, eos_token_id=a.vocab - 1)
    return config


def llama_config(a):
    return {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": a.hidden, "intermediate_size": a.intermediate, "num_hidden_layers": a.layers,
        "num_attention_heads": a.heads, "num_key_value_heads": a.kv_heads, "vocab_size": a.vocab,
        "max_position_embeddings": a.positions, "hidden_act": "silu", "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0, "rope_scaling": None, "attention_bias": False, "tie_word_embeddings": False,
        "bos_token_id": 1, "eos_token_id": 2, "initializer_range": a.std, "torch_dtype": "float32",
    }


def numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def write_safetensors(path, specs, rng, std):
    header = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape, _ in specs:
        nbytes = 4 * numel(shape)
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # keeps the data buffer 8-byte aligned, like the safetensors writer
    normal = array.array("f", (rng.gauss(0.0, std) for _ in range(POOL)))
    if sys.byteorder != "little":
        normal.byteswap()
    pool = {"weight": normal.tobytes() * 2,   # doubled, so any slice of POOL floats is contiguous
            "bias": bytes(4 * POOL) * 2,
            "ln_weight": array.array("f", [1.0]).tobytes() * (2 * POOL)}
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for _, shape, kind in specs:
            left = numel(shape)
            while left:
                n = min(left, POOL)
                start = rng.randrange(POOL)
                f.write(pool[kind][4 * start:4 * (start + n)])
                left -= n
    os.replace(path + ".tmp", path)
    return offset


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output model folder (created)")
    ap.add_argument("--arch", choices=sorted(DEFAULTS), default="gpt2")
    for key in ["layers", "hidden", "heads", "kv_heads", "intermediate", "vocab", "positions"]:
        ap.add_argument("--" + key.replace("_", "-"), type=int, help="default: per --arch")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--std", type=float, default=0.02, help="weight init std (HF initializer_range)")
    ap.add_argument("--reference", default=DEFAULT_REFERENCE,
                    help="model folder to take the GPT-2 config.json and the tokenizer files from")
    args = ap.parse_args()
    for key, value in DEFAULTS[args.arch].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.hidden % args.heads or args.heads % args.kv_heads:
        sys.exit(f"--hidden {args.hidden}, --heads {args.heads}, --kv-heads {args.kv_heads}: "
                 "each must divide the one before")

    os.makedirs(args.out, exist_ok=True)
    config = gpt2_config(args, args.reference) if args.arch == "gpt2" else llama_config(args)
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    for name in TOKENIZER_FILES:
        src = os.path.join(args.reference, name)
        if os.path.exists(src):
            shutil.copyfile(src, os.path.join(args.out, name))

    rng = random.Random(args.seed)
    specs = gpt2_specs(args) if args.arch == "gpt2" else llama_specs(args)
    nbytes = write_safetensors(os.path.join(args.out, "model.safetensors"), specs, rng, args.std)
    print(f"{args.out}/model.safetensors: {args.arch}, {len(specs)} tensors, {nbytes / 4e6:.1f} M parameters, "
          f"{nbytes / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
