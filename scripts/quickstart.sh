#!/usr/bin/env bash
# The README's first command: install what is needed, build, and run the main job on the embedded
# default model (a real trained tiny Llama, examples/models/stories260K).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh -DATLAS_BUILD_TESTS=OFF -DATLAS_BUILD_BENCH=OFF   # just the atlas binary
mkdir -p out
text="Lily went to the park. She saw a big dog and ran to it."
echo
echo "== atlas extract on the embedded model"
build/bin/atlas extract --model examples/models/stories260K --text "$text" -o out/quickstart.npz
echo
echo "== atlas visualize"
build/bin/atlas visualize heatmap out/quickstart.npz --layer 2 --head 3 -o out/quickstart-heatmap.png
build/bin/atlas visualize flow out/quickstart.npz --layer 1 -o out/quickstart-flow.png
echo "figures: $(pwd)/out/quickstart-heatmap.png (layer 2, head 3) and $(pwd)/out/quickstart-flow.png (layer 1, mean of the heads, 3 strongest links per token)"
echo
echo "== atlas extract on a corpus (one model load, documents batched by length, a resumable store)"
rm -rf out/quickstart-store
build/bin/atlas extract --model examples/models/stories260K --input examples/corpus/stories.txt \
    -o out/quickstart-store --batch-size 4 --dtype float16
build/bin/atlas visualize heatmap out/quickstart-store:2 --layer 2 --head mean -o out/quickstart-doc2.png
echo "store: $(pwd)/out/quickstart-store (manifest.jsonl + shard-00000.npz); document 2: out/quickstart-doc2.png"
echo
echo "Read it back with numpy:"
echo "  python3 -c 'import numpy as np; z = np.load(\"out/quickstart.npz\"); print(z[\"attention\"].shape, list(z[\"tokens\"]))'"
