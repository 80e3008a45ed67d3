#!/usr/bin/env bash
# Installs what the tests need when it is missing: the real Pushgateway, Prometheus and
# VictoriaMetrics (the single-node server and vmagent), mingw-w64 and wine for the Windows
# build (Debian/Ubuntu packages through apt-get, as root or with sudo), and the Rust target
# x86_64-pc-windows-gnu (rustup). Does nothing when all is there. Called by scripts/test.sh.
set -euo pipefail

WINDOWS_TARGET=x86_64-pc-windows-gnu

have_wine() {
  command -v wine64 >/dev/null 2>&1 || command -v wine >/dev/null 2>&1 || [ -x /usr/lib/wine/wine64 ]
}

missing=()
command -v prometheus-pushgateway >/dev/null 2>&1 || missing+=(prometheus-pushgateway)
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
{ command -v victoria-metrics >/dev/null 2>&1 && command -v vmagent >/dev/null 2>&1; } \
  || missing+=(victoria-metrics)
command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || missing+=(gcc-mingw-w64-x86-64)
have_wine || missing+=(wine64)
# The `prometheus` crate (a dev-dependency, the benchmarks' peer) builds reqwest's native-tls.
{ command -v pkg-config >/dev/null 2>&1 && pkg-config --exists openssl 2>/dev/null; } \
  || missing+=(pkg-config libssl-dev)
"$(dirname "$0")/apt-install.sh" ${missing[@]+"${missing[@]}"}
if ! rustup target list --installed 2>/dev/null | grep -qx "$WINDOWS_TARGET"; then
  echo "scripts/test.sh: adding the Rust target $WINDOWS_TARGET"
  rustup target add "$WINDOWS_TARGET"
fi
prometheus-pushgateway --version 2>&1 | head -1
prometheus --version 2>&1 | head -1
