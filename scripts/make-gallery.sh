#!/usr/bin/env bash
# Regenerates docs/gallery/: every `atlas visualize` kind, rendered from the embedded stories260K
# model's `atlas extract` output. Usage: scripts/make-gallery.sh [path/to/atlas]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
atlas="${1:-${ATLAS:-$root/build/bin/atlas}}"
out="$root/docs/gallery"
model="$root/examples/models/stories260K"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
export SOURCE_DATE_EPOCH=0   # reproducible PDFs/EPS if anyone renders those from here

"$atlas" extract --model "$model" -o "$work/story.npz" \
  --text "Once upon a time, there was a little girl named Lily. She loved to play outside."
# The he/she counterfactual: 27 and 28 tokens, 17 words each.
"$atlas" extract --model "$model" -o "$work/story-he.npz" \
  --text "Once upon a time, there was a little boy named Tom. He loved to play outside."
"$atlas" process rollout "$work/story.npz" -o "$work/rollout.npz"

v() { "$atlas" visualize "$@" --dpi 120 >/dev/null; }
v heatmap   "$work/story.npz" -o "$out/heatmap.png" --layer 2 --head 3
v heatmap   "$work/story.npz" -o "$out/heatmap-mean-values.png" --layer 0 --head mean --values --hide-special
v grid      "$work/story.npz" -o "$out/grid.png"
v flow      "$work/story.npz" -o "$out/flow.png" --layer 1 --head 0,1,2,3 --threshold 0.1
v flow      "$work/story.npz" -o "$out/flow-default.png" --layer 3
v flow      "$work/story.npz" -o "$out/flow-focus.png" --layer 3 --focus Lily --threshold 0.02 --top-links 0
v flow      "$work/story.npz" -o "$out/flow-words.png" --layer 3 --words --focus She --threshold 0.02 --top-links 0
v flowgraph "$work/story.npz" -o "$out/flowgraph.png" --target 16 --threshold 0.08
# One text, two depths: where the first layer and the last one attend differently.
v contrast  "$work/story.npz" "$work/story.npz" -o "$out/contrast.png" --layer 0 --layer-b 4 --head mean
# Word level: the he/she pair, word by word, each panel with its own words.
v contrast  "$work/story.npz" "$work/story-he.npz" -o "$out/contrast-words.png" --words --layer -1 --head mean
# Attention rollout (Abnar & Zuidema 2020) through every layer, from `atlas process rollout`.
v heatmap   "$work/rollout.npz" -o "$out/rollout.png" --layer -1 --head mean --hide-special
v profile   "$work/story.npz" -o "$out/profile.png"
v heatmap   "$work/story.npz" -o "$out/heatmap-dark.png" --layer 4 --head 0 --style dark
# The analyze figures (clusters.png, detect-prev-token.png, ...): examples/analyze/make-figures.sh.
ls -la "$out"
