#!/usr/bin/env bash
# The main job: `linkcard demo`, the deposit -> purchase story on the embedded default (the card in this process
# with its memory in a file, the bank and credit systems on SQLite, all in a fresh directory). Extra arguments go
# to `linkcard demo` (`--json`, `--dir DIR`).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_rust
cargo run --locked --quiet --release -p linkcard-cli --bin linkcard -- demo "$@"
