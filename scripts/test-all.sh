#!/usr/bin/env bash
# The README's second command (and what .ci/run calls): install, build, run every test.
# Tests read the reference data in ../shared (ATLAS_SHARED_DIR overrides).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash scripts/install-deps.sh --slurm --browser   # Slurm + munge (e2e_slurm), Chromium + npm (e2e_browser)
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
# The suite again under AddressSanitizer + UBSan + LeakSanitizer, in its own build folder build-asan/
# (docs/hardening.md, "Sanitizers"). ATLAS_SKIP_SANITIZE=1 skips it (the log then says so).
if [ "${ATLAS_SKIP_SANITIZE:-0}" != 1 ]; then
  set +e
  bash scripts/test-sanitize.sh
  san_rc=$?
  set -e
  [ "$rc" -eq 0 ] && rc=$san_rc
else
  echo "CI summary (sanitizers): skipped (ATLAS_SKIP_SANITIZE=1)"
fi
# A short libFuzzer pass over every parser of outside data (its own clang + ASan/UBSan build folder,
# build-fuzz; every target 60 s, as many at once as there are cores, plus the build). ATLAS_SKIP_FUZZ=1
# skips it; ATLAS_FUZZ_TIME sets the seconds per target. A finding is reported and its input left in tests/fuzz/regressions/.
# It runs last, after the sanitizer step: a new finding's input is copied into tests/, and replaying it
# there in this same run would let one lucky fuzz run decide the result (see the end of this script).
fuzz_rc=0
if [[ ${ATLAS_SKIP_FUZZ:-0} != 1 ]]; then
  fuzz_start=$(date +%s)
  set +e
  bash scripts/fuzz.sh --time "${ATLAS_FUZZ_TIME:-60}" --jobs "$(nproc)" 2>&1 | tee build/fuzz.log
  fuzz_rc=${PIPESTATUS[0]}
  set -e
  echo "fuzz finished after $(( $(date +%s) - fuzz_start )) s (exit $fuzz_rc)"
else
  echo "fuzz: skipped (ATLAS_SKIP_FUZZ=1)"
fi
fuzz_summary=$([[ -f build/fuzz.log && ${ATLAS_SKIP_FUZZ:-0} != 1 ]] && grep -cE '^fuzz_.*[1-9][0-9]* findings' build/fuzz.log || true)
echo "CI summary (fuzz): targets with findings: ${fuzz_summary:-skipped}"
echo "all finished after $(( $(date +%s) - start )) s"
# Fuzz findings are reported above (and their inputs kept in tests/fuzz/regressions/); a short run's
# luck does not decide whether a submission lands.
exit "$rc"
