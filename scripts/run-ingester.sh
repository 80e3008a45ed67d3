#!/usr/bin/env bash
# Runs the example ingester for real on this machine: installs the Pushgateway from the OS
# packages if it is missing, starts it on 127.0.0.1:9091 unless one already listens there,
# ingests this repository's own sources and sample data, and prints the group as the gateway
# shows it.
#
#   scripts/run-ingester.sh [FILE...]
set -euo pipefail
cd "$(dirname "$0")/.."

addr=127.0.0.1:9091
url="http://$addr"

if ! command -v prometheus-pushgateway >/dev/null 2>&1; then
  echo "installing the Pushgateway (Debian package prometheus-pushgateway)..." >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus-pushgateway >/dev/null
fi

if curl -fsS "$url/-/ready" >/dev/null 2>&1; then
  echo "using the Pushgateway already listening on $addr" >&2
else
  state=$(mktemp -d)
  nohup prometheus-pushgateway --web.listen-address="$addr" --persistence.file= \
    >"$state/pushgateway.log" 2>&1 &
  echo "started the Pushgateway on $addr (pid $!, log $state/pushgateway.log; stop it with: kill $!)" >&2
  for _ in $(seq 1 100); do
    curl -fsS "$url/-/ready" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fsS "$url/-/ready" >/dev/null || { echo "the Pushgateway did not start" >&2; exit 1; }
fi

if [ "$#" -eq 0 ]; then
  set -- src/*.rs Cargo.toml README.md examples/data/venues.csv examples/data/events.jsonl
fi

cargo build --quiet --release --example ingester
status=0
PUSHGATEWAY_URL="$url" target/release/examples/ingester "$@" || status=$?
echo "ingester exited with status $status" >&2

echo
echo "# the group job=\"ingester\" as the Pushgateway exposes it ($url/metrics):"
curl -fsS "$url/metrics" | grep -E '^[a-z_]+(\{[^}]*\})? ' | grep 'job="ingester"' | grep -v '_bucket{'
exit "$status"
