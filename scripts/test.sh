#!/usr/bin/env bash
# The whole test suite, on a machine that may have none of what it needs: installs what is
# missing (the real Pushgateway and Prometheus, mingw-w64 and wine for the Windows build, the
# Rust target), checks that the crate, its examples and tests build for Windows, then runs
# every test (the Windows exit paths under wine among them).
#
#   scripts/test.sh [extra cargo test arguments]
#
# Debian/Ubuntu packages through apt-get (as root, or with sudo); the Rust target through
# rustup.
set -euo pipefail
cd "$(dirname "$0")/.."

WINDOWS_TARGET=x86_64-pc-windows-gnu
scripts/install-test-deps.sh

# The crate, its examples, tests and benches build for Windows.
cargo build --locked --quiet --target "$WINDOWS_TARGET" --all-targets

# Everything: unit tests, doctests, and the integration tests against the real servers,
# tests/windows.rs running the Windows build under wine.
cargo test --locked "$@"
# What the `serde` feature adds (the catalog's JSON and dashboard), tested in the crate.
cargo test --locked --lib --features serde catalog
