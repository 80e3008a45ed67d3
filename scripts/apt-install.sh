#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages named as arguments through apt-get, as root or with
# sudo; with none, does nothing. Shared by install-test-deps.sh and install-bench-deps.sh.
set -euo pipefail
[ "$#" -gt 0 ] || exit 0
echo "installing $*"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
