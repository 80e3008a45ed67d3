#!/usr/bin/env bash
# Installs what the benchmarks (benches/push.rs) need when it is missing: the real Pushgateway
# and Prometheus, the build of the `prometheus` crate (pkg-config, libssl-dev), and for the
# Go peer Go and client_golang (Debian's golang-go and
# golang-github-prometheus-client-golang-dev, which the bench builds against in GOPATH mode
# from /usr/share/gocode, offline). Debian/Ubuntu packages through apt-get, as root or with
# sudo. Does nothing when all is there.
#
#   scripts/install-bench-deps.sh && PUSH_BENCH_ONLY=peers cargo bench --bench push
set -euo pipefail

CLIENT_GOLANG=/usr/share/gocode/src/github.com/prometheus/client_golang/prometheus/push

missing=()
command -v prometheus-pushgateway >/dev/null 2>&1 || missing+=(prometheus-pushgateway)
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
{ command -v pkg-config >/dev/null 2>&1 && pkg-config --exists openssl 2>/dev/null; } \
  || missing+=(pkg-config libssl-dev)
command -v go >/dev/null 2>&1 || missing+=(golang-go)
[ -d "$CLIENT_GOLANG" ] || missing+=(golang-github-prometheus-client-golang-dev)
"$(dirname "$0")/apt-install.sh" ${missing[@]+"${missing[@]}"}
prometheus-pushgateway --version 2>&1 | head -1
prometheus --version 2>&1 | head -1
go version
