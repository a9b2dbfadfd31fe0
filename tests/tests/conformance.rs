//! Runs every conformance script in `tests/conformance` on a fresh in-process card; each must pass.

use conformance::runner::{collect_script_paths, run_each};
use conformance::script::parse_files;
use emulator::{IN_PROCESS_DESCRIPTION, InProcessChannel};
use linkcard_tests::conformance_dir;

#[test]
fn every_conformance_script_passes_in_process() {
    let dir = conformance_dir();
    // An empty directory is an error here, so this test cannot pass by running nothing.
    let paths = collect_script_paths(std::slice::from_ref(&dir))
        .unwrap_or_else(|e| panic!("no conformance scripts to run: {e}"));
    let scripts = parse_files(&paths).unwrap_or_else(|errors| {
        let listed: Vec<String> = errors.iter().map(ToString::to_string).collect();
        panic!("conformance scripts do not parse:\n{}", listed.join("\n"))
    });
    assert!(!scripts.is_empty(), "no scripts in {}", dir.display());

    let report = run_each(
        &scripts,
        IN_PROCESS_DESCRIPTION,
        false,
        InProcessChannel::new,
    )
    .unwrap_or_else(|e| panic!("no in-process card: {e}"));
    let failed: Vec<&str> = report
        .scripts
        .iter()
        .filter(|s| !s.passed)
        .map(|s| s.name.as_str())
        .collect();
    assert!(
        failed.is_empty(),
        "conformance scripts failed: {}\n\n{}",
        failed.join(", "),
        report.human()
    );
    assert_eq!(report.passed, scripts.len());
    // The report of a passing run, for `--nocapture`.
    print!("{}", report.human());
}
