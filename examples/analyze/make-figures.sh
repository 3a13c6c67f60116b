#!/usr/bin/env bash
# The analyze figures of docs/gallery/ from the embedded stories260K model:
#   examples/analyze/make-figures.sh [path/to/atlas]
# head clusters (analyze heads over stories.txt -> analyze cluster), the previous-token detector map,
# WinoBias coreference accuracy per head, and attention by distance over the stories.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
atlas="${1:-${ATLAS:-$root/build/bin/atlas}}"
model="$root/examples/models/stories260K"
out="$root/docs/gallery"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$atlas" analyze heads --model "$model" --input "$root/examples/analyze/stories.txt" -o "$work/heads.json" >/dev/null
"$atlas" analyze cluster "$work/heads.json" -o "$out/clusters.png" --dpi 120
"$atlas" analyze detect --model "$model" --figure "$out/detect-prev-token.png" --metric prev_token --dpi 120 >/dev/null
"$atlas" analyze coref --model "$model" --winobias "$root/../shared/data/bias/winobias" --limit 50 --figure "$out/coref-winobias.png" --dpi 120
"$atlas" analyze long --model "$model" --input "$root/examples/analyze/stories.txt" --figure "$out/long-distance.png" --dpi 120 >/dev/null
