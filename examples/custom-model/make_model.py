#!/usr/bin/env python3
"""A tiny 2-layer causal transformer that returns its attention maps, saved as TorchScript.

The contract `atlas extract --model model.pt` expects (docs/custom-models.md):
    forward(input_ids: LongTensor[B, T]) -> (attentions, logits)
where `attentions` is a tuple/list with one [B, H, T, T] tensor per layer (softmax probabilities,
rows sum to 1) and `logits` [B, T, V] is optional. A dict {"attentions": ..., "logits": ...} works
too. Copy this file and replace TinyTransformer with your own model.

    python3 make_model.py -o tiny.pt      # needs PyTorch (Debian: apt-get install python3-torch)
    atlas extract --model tiny.pt --ids 1,2,3,4 -o out.npz
"""
import argparse
import math
from typing import List, Tuple

import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.ln_1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.ln_2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln_1(x)).split(d, dim=2)
        q = q.view(b, t, self.n_heads, self.head_dim).transpose(1, 2)  # [B,H,T,hd]
        k = k.view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        v = v.view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)  # [B,H,T,T]
        causal = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        scores = scores.masked_fill(~causal, float("-inf"))
        probs = torch.softmax(scores, dim=-1)  # [B,H,T,T], the attention maps atlas stores
        y = (probs @ v).transpose(1, 2).reshape(b, t, d)
        x = x + self.out(y)
        x = x + self.mlp(self.ln_2(x))
        return x, probs


class TinyTransformer(nn.Module):
    def __init__(self, vocab_size: int = 64, d_model: int = 32, n_heads: int = 2, n_layers: int = 2,
                 max_positions: int = 128):
        super().__init__()
        # Optional attributes atlas reads for ModelInfo (it also probes the forward pass).
        self.num_layers = n_layers
        self.num_heads = n_heads
        self.vocab_size = vocab_size
        self.max_positions = max_positions
        self.causal = True
        self.wte = nn.Embedding(vocab_size, d_model)
        self.wpe = nn.Embedding(max_positions, d_model)
        self.blocks = nn.ModuleList([Block(d_model, n_heads) for _ in range(n_layers)])
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size, bias=False)

    def forward(self, input_ids: torch.Tensor) -> Tuple[List[torch.Tensor], torch.Tensor]:
        t = input_ids.shape[1]
        positions = torch.arange(t, device=input_ids.device).unsqueeze(0)
        x = self.wte(input_ids) + self.wpe(positions)  # [B,T,D]
        attentions: List[torch.Tensor] = []
        for block in self.blocks:
            x, probs = block(x)
            attentions.append(probs)
        return attentions, self.head(self.ln_f(x))  # logits [B,T,V]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", default="tiny.pt")
    parser.add_argument("--seed", type=int, default=20240418)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    model = TinyTransformer()
    with torch.no_grad():  # larger weights than the default init so that attention is far from uniform
        for p in model.parameters():
            p.mul_(3.0)
    model.eval()
    scripted = torch.jit.script(model)
    scripted.save(args.output)
    ids = torch.tensor([[1, 5, 9, 3, 7]])
    attentions, logits = scripted(ids)
    print(f"wrote {args.output}: {len(attentions)} layers, attention {list(attentions[0].shape)}, "
          f"logits {list(logits.shape)}")


if __name__ == "__main__":
    main()
