#!/usr/bin/env bash
# Installs what gbx needs from Debian 12's packages (as root; idempotent: a
# second run only checks) and builds the project into build/ (or $GBX_BUILD).
#   GBX_WERROR=ON    warnings are errors (CI)
#   GBX_SANITIZE=ON  AddressSanitizer + UndefinedBehaviorSanitizer build
#   GBX_VALGRIND=ON  ctest runs test programs under valgrind
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake pkg-config ca-certificates
  libzmq3-dev libprotobuf-c-dev protobuf-c-compiler libsodium-dev librocksdb-dev
  libfyaml-dev libcmocka-dev uthash-dev libjansson-dev libmicrohttpd-dev
  python3 python3-nacl python3-protobuf python3-yaml protobuf-compiler
  dpkg-dev file # cpack -G DEB: dpkg-shlibdeps, and file to find the ELF files
)

[ "${GBX_VALGRIND:-OFF}" = ON ] && packages+=(valgrind)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then
    sudo=()
  elif command -v sudo >/dev/null; then
    sudo=(sudo)
  else
    echo "setup: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

build=${GBX_BUILD:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE="${GBX_BUILD_TYPE:-RelWithDebInfo}" \
  -DGBX_WERROR="${GBX_WERROR:-OFF}" -DGBX_SANITIZE="${GBX_SANITIZE:-OFF}" \
  -DGBX_VALGRIND="${GBX_VALGRIND:-OFF}" >/dev/null
cmake --build "$build" -j"$(nproc)"
