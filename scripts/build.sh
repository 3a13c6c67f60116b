#!/usr/bin/env bash
# Configures and builds Attention Atlas (Release, ninja + ccache when present) into build/.
# Usage: scripts/build.sh [extra cmake args...]   (BUILD_DIR overrides build/)
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${BUILD_DIR:-build}"
# ccache keys on paths relative to the checkout's parent, so clones and worktrees share the cache.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$(cd .. && pwd)}"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if [ ! -f "$build_dir/CMakeCache.txt" ]; then
  cmake -S . -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release "$@"
else
  cmake -S . -B "$build_dir" "$@" >/dev/null
fi
cmake --build "$build_dir" -j "$(nproc)"
echo "build: $build_dir/bin/atlas"
