//! Runs every conformance script in `tests/conformance` on a fresh in-process card; each must pass.

use host_tools::conformance::{collect_script_paths, run_in_process};
use host_tools::script::parse_files;
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

    let report = run_in_process(&scripts, false);
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
