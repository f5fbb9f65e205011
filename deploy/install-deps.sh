#!/usr/bin/env bash
# Installs everything respscope needs to build, run and test, from Debian's packages.
# Idempotent: packages already present are skipped quickly. Used by the README, .ci/run and
# the Dockerfile alike.
#   deploy/install-deps.sh           build + run dependencies
#   deploy/install-deps.sh --test    also the test and benchmark dependencies
set -euo pipefail

build_pkgs=(
  g++ cmake make pkg-config
  libboost1.81-dev libboost-url1.81-dev libboost-json1.81-dev
  libhiredis-dev prometheus-cpp-dev libspdlog-dev libfmt-dev libyaml-cpp-dev libssl-dev
  redis-server redis-tools
)
test_pkgs=(
  libgtest-dev libgmock-dev libbenchmark-dev clang libclang-rt-14-dev
  python3 python3-redis python3-yaml nodejs npm nutcracker prometheus chromium procps
  openssl  # the CLI: tests make their TLS certificates with it
  redis-sentinel
)

want=("${build_pkgs[@]}")
if [[ "${1:-}" == "--test" ]]; then want+=("${test_pkgs[@]}"); fi

missing=()
for p in "${want[@]}"; do
  # nodejs/npm may come from another repository already; accept the binaries.
  case "$p" in
    nodejs) command -v node >/dev/null && continue ;;
    npm) command -v npm >/dev/null && continue ;;
  esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "install-deps: ok"
