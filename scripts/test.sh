#!/usr/bin/env bash
# Runs every check CI runs: formatting, lints, all tests, the card crates for the Cortex-M4 target (no allocator),
# the conformance suite against the in-process card, and the system tests over a real pcscd.
# Installs what it needs when missing (the Rust target; Debian packages for PC/SC, as root).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_rust
ensure_card_target
ensure_system_packages

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy (host workspace, all targets)"
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy -p token --features aws-lc --all-targets --locked -- -D warnings

step "card crates for thumbv7em-none-eabihf (no std, no allocator)"
cargo build --locked --release -p apdu-spec -p card-t1 -p card-os -p card-image --target "$CARD_TARGET"
# A bare-metal binary without #[global_allocator]: it fails to build if anything on the card needs `alloc`.
cargo build --locked --release --manifest-path firmware/Cargo.toml --target "$CARD_TARGET"
# The firmware ships the assembly-backed P-256 (the default feature); RustCrypto's generic one keeps building, and
# the on-board vector check with either (docs/firmware.md).
cargo clippy --locked --release --manifest-path firmware/Cargo.toml --target "$CARD_TARGET" --all-targets \
  -- -D warnings
cargo clippy --locked --release --manifest-path firmware/Cargo.toml --target "$CARD_TARGET" --all-targets \
  --no-default-features -- -D warnings
size_report firmware/target/"$CARD_TARGET"/release/linkcard-firmware

step "cargo test (workspace)"
cargo test --workspace --locked
# The credit system's AWS-LC token opener, against RFC 9180 and RustCrypto's (a feature no workspace crate turns on yet).
cargo test --locked -p token --features aws-lc --test aws_lc

step "conformance suite, in-process card"
cargo run --locked --quiet -p linkcard-cli --bin linkcard -- conformance run --in-process

step "system tests over a real pcscd"
bash scripts/system-test.sh
