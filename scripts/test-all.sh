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
set +e
ctest --output-on-failure -j "$(nproc)" --timeout 900 2>&1 | tee ctest.log
rc=${PIPESTATUS[0]}
set -e
echo "tests finished after $(( $(date +%s) - start )) s"
# Skipped tests (exit 77: no Slurm, no GPU, no disk for the 4 GiB case) must be visible in CI logs.
skipped=$(sed -n '/The following tests did not run:/,/^$/p' ctest.log |
  sed -nE 's/^[[:space:]]+[0-9]+ - ([^ ]+) \((.*)\)$/\1 (\2)/p' | paste -sd ',' - | sed 's/,/, /g')
echo "CI summary: $(grep -E 'tests passed, ' ctest.log | tail -1); skipped: ${skipped:-none}"
cd ..
# Then the suite again under AddressSanitizer + UBSan + LeakSanitizer, in build-asan/ (docs/hardening.md,
# "Sanitizers"); ATLAS_SKIP_SANITIZE=1 skips it (it says so in the log).
if [ "${ATLAS_SKIP_SANITIZE:-0}" = 1 ]; then
  echo "CI summary (sanitizers): skipped (ATLAS_SKIP_SANITIZE=1)"
else
  set +e
  bash scripts/test-sanitize.sh
  san_rc=$?
  set -e
  [ "$rc" -eq 0 ] && rc=$san_rc
  echo "all finished after $(( $(date +%s) - start )) s"
fi
exit "$rc"
