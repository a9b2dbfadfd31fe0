#!/usr/bin/env bash
# The main job. Until the deposit -> purchase -> settlement story exists, it runs the APDU conformance suite
# against the in-process card and prints a readable report. Extra arguments go to `linkcard conformance run`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_rust
cargo run --locked --quiet --release -p linkcard-cli --bin linkcard -- conformance run --in-process "$@"
