#!/usr/bin/env bash
# The README's second command (and what .ci/run calls): install, build, run every test.
# Tests read the reference data in ../shared (ATLAS_SHARED_DIR overrides).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash scripts/install-deps.sh --slurm   # Slurm + munge for the e2e_slurm test
bash scripts/build.sh -DATLAS_BUILD_TESTS=ON -DATLAS_BUILD_BENCH=ON
echo "build finished after $(( $(date +%s) - start )) s"
cd build
ctest --output-on-failure -j "$(nproc)" --timeout 900
echo "tests finished after $(( $(date +%s) - start )) s"
