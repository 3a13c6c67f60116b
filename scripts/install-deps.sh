#!/usr/bin/env bash
# Installs the Debian 12 packages Attention Atlas needs to build, test and run.
# Idempotent: running it again installs nothing new and re-selects the BLAS alternative.
# Usage: scripts/install-deps.sh [--slurm] [--browser]
#   --slurm    also install Slurm + munge for the e2e_slurm test (tests/e2e/test_slurm.sh);
#              test-all.sh passes it, the quickstart does not need it. No daemon is started.
#   --browser  also install Chromium, Node.js and npm for the e2e_browser test of `atlas serve`
#              (tests/e2e/test_browser.sh installs playwright-core from npm into the build tree).
set -euo pipefail

with_slurm=0
with_browser=0
for arg in "$@"; do
  case "$arg" in
    --slurm) with_slurm=1 ;;
    --browser) with_browser=1 ;;
    *) echo "install-deps: unknown option '$arg' (usage: install-deps.sh [--slurm] [--browser])" >&2; exit 2 ;;
  esac
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  libtorch-dev libopenblas0-openmp libdnnl-dev
  libsentencepiece-dev
  libcairo2-dev libpango1.0-dev fonts-dejavu-core fonts-noto-core fonts-noto-cjk fonts-noto-color-emoji
  libyaml-cpp-dev libfmt-dev libcli11-dev doctest-dev nlohmann-json3-dev
  libzip-dev zlib1g-dev libdeflate-dev libpcre2-dev
  libssl-dev libcurl4-openssl-dev
  libcpp-httplib-dev   # atlas serve
  python3 python3-numpy python3-networkx   # networkx: test_process.sh and bench/bench_flow.py check max-flow against it
  librsvg2-bin poppler-utils
  clang libclang-rt-14-dev   # scripts/fuzz.sh: libFuzzer + ASan/UBSan
)
# A private single-node cluster for tests/e2e/test_slurm.sh (scripts/slurm/local-cluster.sh).
SLURM_PACKAGES=(slurmctld slurmd slurm-client munge)
if [ "$with_slurm" -eq 1 ]; then PACKAGES+=("${SLURM_PACKAGES[@]}"); fi
# A headless browser for tests/e2e/test_browser.sh (the atlas serve page).
# A node with its own npm (e.g. NodeSource's) is kept: Debian's npm package would conflict with it.
BROWSER_PACKAGES=(chromium curl)
command -v npm >/dev/null 2>&1 || BROWSER_PACKAGES+=(nodejs npm)
if [ "$with_browser" -eq 1 ]; then PACKAGES+=("${BROWSER_PACKAGES[@]}"); fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  # Without systemd, the munge/slurm postinst scripts start their daemons through invoke-rc.d (and
  # slurmctld's fails without a slurm.conf). A policy-rc.d that answers 101 ("not allowed") keeps
  # apt from starting anything; ours lives only for this install and an existing one is left alone.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ] && [ ! -d /run/systemd/system ]; then
    printf '#!/bin/sh\n# installed by attention-atlas scripts/install-deps.sh for one apt run\nexit 101\n' |
      $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    trap '$SUDO rm -f "$policy"' EXIT
  fi
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all packages present"
fi

# LibTorch calls the generic libblas.so.3; the reference BLAS is ~40x slower than OpenBLAS,
# and the pthread OpenBLAS fights LibTorch's OpenMP pool, so select the OpenMP build.
arch_triplet=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
openblas="/usr/lib/${arch_triplet}/openblas-openmp/libblas.so.3"
if [ -e "$openblas" ]; then
  $SUDO update-alternatives --set "libblas.so.3-${arch_triplet}" "$openblas" >/dev/null
  echo "install-deps: libblas.so.3 -> $(readlink -f /usr/lib/${arch_triplet}/libblas.so.3)"
else
  echo "install-deps: warning: $openblas not found; LibTorch will use the slow reference BLAS" >&2
fi
