//! Workspace-level tests for linkcard.
//!
//! The conformance scripts live in `tests/conformance` (format: `tests/conformance/README.md`); the
//! integration test `tests/conformance.rs` runs every one of them on an in-process card, `tests/secured_runner.rs`
//! checks the runner's secure-channel steps on the in-process card (and the whole suite on one shared card), and
//! `tests/scp11_fixtures.rs` made and checks the SCP11 test keys in `tests/fixtures/scp11`. Run them with
//! `cargo test -p linkcard-tests`, or with `linkcard conformance run` for a readable report.

use std::path::PathBuf;

/// The directory of conformance scripts in this workspace.
pub fn conformance_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("conformance")
}

/// The SCP11 test keys secured scripts use (`keys ../fixtures/scp11`): see `tests/fixtures/scp11/README.md`.
pub fn scp11_fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/scp11")
}
