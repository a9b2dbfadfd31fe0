//! The `linkcard` command: exit codes, report layout and error messages.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A scratch directory for one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("linkcard-cli-{}-{test}", std::process::id()));
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("cannot clear {}: {e}", dir.display()),
        }
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Best effort: a leftover directory in the temp dir harms nothing, and a panic in drop would hide the
        // test's own failure.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn linkcard(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_linkcard"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

const PASSING: &str = "# Unknown instruction\n> 80 FF 00 00\n< 6D 00\n";
const FAILING: &str = "# Wrong expectation\nreset\n> 80 FF 00 00   # unknown INS\n< 90 00\n";

#[test]
fn all_passing_exits_zero_with_summary_last() {
    let scratch = Scratch::new("pass");
    scratch.write("b.apdu", PASSING);
    scratch.write("a.apdu", PASSING);
    let dir = scratch.0.to_str().unwrap();
    let output = linkcard(&["conformance", "run", "--in-process", dir], &scratch.0);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "PASS a.apdu (1 exchange) - Unknown instruction",
            "PASS b.apdu (1 exchange) - Unknown instruction",
            "2 passed, 0 failed"
        ]
    );
}

#[test]
fn a_failure_exits_one_with_details() {
    let scratch = Scratch::new("fail");
    let pass = scratch.write("pass.apdu", PASSING);
    let fail = scratch.write("fail.apdu", FAILING);
    let output = linkcard(
        &[
            "conformance",
            "run",
            fail.to_str().unwrap(),
            pass.to_str().unwrap(),
        ],
        &scratch.0,
    );
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(
        text.starts_with(
            "FAIL fail.apdu (1 exchange) - Wrong expectation\n\
             \x20   line 3: > 80 FF 00 00\n\
             \x20   expected (line 4): 90 00  [9000 SUCCESS]\n\
             \x20   actual: 6D 00  [6D00 INS_NOT_SUPPORTED]\n"
        ),
        "{text}"
    );
    assert!(text.ends_with("\n1 passed, 1 failed\n"), "{text}");
}

#[test]
fn json_report_is_machine_readable() {
    let scratch = Scratch::new("json");
    let fail = scratch.write("fail.apdu", FAILING);
    let output = linkcard(
        &["conformance", "run", "--json", fail.to_str().unwrap()],
        &scratch.0,
    );
    assert_eq!(output.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(json["failed"], 1);
    assert_eq!(json["scripts"][0]["failure"]["line"], 3);
    assert_eq!(json["scripts"][0]["failure"]["actual"], "6D 00");
}

#[test]
fn verbose_traces_apdus_on_stderr() {
    let scratch = Scratch::new("verbose");
    let pass = scratch.write("pass.apdu", PASSING);
    let output = linkcard(
        &["conformance", "run", "-v", pass.to_str().unwrap()],
        &scratch.0,
    );
    assert_eq!(output.status.code(), Some(0));
    let trace = stderr(&output);
    assert!(trace.contains("Sending: 80 FF 00 00\n"), "{trace}");
    assert!(trace.contains("Received (SW1=0x6D, SW2=0x00)"), "{trace}");
}

#[test]
fn syntax_errors_exit_two_naming_file_and_line_and_run_nothing() {
    let scratch = Scratch::new("syntax");
    scratch.write("good.apdu", PASSING);
    scratch.write("bad.apdu", "# Broken\n> 80 FF 00 00\nreset\n");
    let dir = scratch.0.to_str().unwrap();
    for command in ["run", "check"] {
        let output = linkcard(&["conformance", command, dir], &scratch.0);
        assert_eq!(output.status.code(), Some(2), "{command}");
        assert_eq!(stdout(&output), "", "{command}: nothing is run or reported");
        let errors = stderr(&output);
        let bad = scratch.0.join("bad.apdu");
        assert!(
            errors.starts_with(&format!(
                "{}:2: command has no expected response",
                bad.display()
            )),
            "{errors}"
        );
    }
}

#[test]
fn check_accepts_good_scripts() {
    let scratch = Scratch::new("check");
    let good = scratch.write("good.apdu", PASSING);
    let output = linkcard(
        &["conformance", "check", good.to_str().unwrap()],
        &scratch.0,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stdout(&output).contains("(1 steps, 1 commands)"));
}

#[test]
fn default_directory_is_tests_conformance_under_the_current_directory() {
    let scratch = Scratch::new("default");
    std::fs::create_dir_all(scratch.0.join("tests/conformance")).unwrap();
    scratch.write("tests/conformance/only.apdu", PASSING);
    let output = linkcard(&["conformance", "run"], &scratch.0);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stdout(&output).starts_with("PASS only.apdu "));
}

#[test]
fn missing_paths_and_empty_directories_exit_two() {
    let scratch = Scratch::new("missing");
    let output = linkcard(&["conformance", "run", "nowhere.apdu"], &scratch.0);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("nowhere.apdu"),
        "{}",
        stderr(&output)
    );

    std::fs::create_dir_all(scratch.0.join("empty")).unwrap();
    let output = linkcard(&["conformance", "run", "empty"], &scratch.0);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("no *.apdu scripts"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn usage_errors_exit_two() {
    let scratch = Scratch::new("usage");
    let output = linkcard(&["conformance", "run", "--frobnicate"], &scratch.0);
    assert_eq!(output.status.code(), Some(2));
    let output = linkcard(&["conformance", "run", "--help"], &scratch.0);
    assert_eq!(output.status.code(), Some(0));
    assert!(stdout(&output).contains("Exit status"));
}

#[test]
fn scp11_keys_and_certificates_offline() {
    let scratch = Scratch::new("scp11");
    let dir = &scratch.0;
    let output = linkcard(&["scp11", "ca", "--out", "ca.key"], dir);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stdout(&output).contains("identifier (CA-KLOC): "));
    let key = std::fs::read_to_string(dir.join("ca.key")).unwrap();
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "PKCS#8 PEM");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(dir.join("ca.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "a CA key is readable by its owner only"
    );
    // Never overwritten.
    let again = linkcard(&["scp11", "ca", "--out", "ca.key"], dir);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("must not exist"),
        "{}",
        stderr(&again)
    );
    assert_eq!(std::fs::read_to_string(dir.join("ca.key")).unwrap(), key);

    let issue = [
        "scp11",
        "issue",
        "--ca",
        "ca.key",
        "--role",
        "bank-atm",
        "--subject",
        "ATM 0042",
        "--days",
        "30",
        "--out",
        "atm",
    ];
    let output = linkcard(&issue, dir);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("role:        bank-atm"), "{text}");
    assert!(text.contains("subject:     \"ATM 0042\""), "{text}");
    assert!(text.contains("key usage:   key agreement (0080)"), "{text}");
    assert!(dir.join("atm.key").exists() && dir.join("atm.cert").exists());
    assert_eq!(linkcard(&issue, dir).status.code(), Some(2), "no overwrite");

    let output = linkcard(&["scp11", "show", "atm.cert", "--ca", "ca.key"], dir);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stdout(&output).contains("verified against ca.key"));
    linkcard(&["scp11", "ca", "--out", "other.key"], dir);
    let output = linkcard(&["scp11", "show", "atm.cert", "--ca", "other.key"], dir);
    assert_eq!(
        output.status.code(),
        Some(1),
        "another CA does not verify it"
    );
    assert!(stdout(&output).contains("NOT valid"));
}

#[test]
fn scp11_bad_input_is_explained() {
    let scratch = Scratch::new("scp11-bad");
    let dir = &scratch.0;
    linkcard(&["scp11", "ca", "--out", "ca.key"], dir);
    let role = linkcard(
        &[
            "scp11",
            "issue",
            "--ca",
            "ca.key",
            "--role",
            "admin",
            "--subject",
            "x",
            "--out",
            "x",
        ],
        dir,
    );
    assert_eq!(role.status.code(), Some(2));
    assert!(
        stderr(&role).contains("issuer"),
        "lists the roles: {}",
        stderr(&role)
    );
    let long = linkcard(
        &[
            "scp11",
            "issue",
            "--ca",
            "ca.key",
            "--role",
            "issuer",
            "--subject",
            "a subject of more than twenty bytes",
            "--out",
            "x",
        ],
        dir,
    );
    assert_eq!(long.status.code(), Some(2));
    assert!(stderr(&long).contains("1 to 20 bytes"));
    let missing = linkcard(
        &[
            "scp11",
            "issue",
            "--ca",
            "none.key",
            "--role",
            "issuer",
            "--subject",
            "x",
            "--out",
            "x",
        ],
        dir,
    );
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("cannot read none.key"),
        "{}",
        stderr(&missing)
    );
    std::fs::write(dir.join("junk.cert"), b"\x7F\x21\x05junk").unwrap();
    let junk = linkcard(&["scp11", "show", "junk.cert"], dir);
    assert_eq!(junk.status.code(), Some(2));
    assert!(stderr(&junk).contains("not a GP certificate"));
    let apdu = linkcard(
        &[
            "scp11",
            "send",
            "-r",
            "0",
            "--card-ca",
            "ca.key",
            "--scp11b",
            "80F2zz",
        ],
        dir,
    );
    assert_eq!(apdu.status.code(), Some(2));
    assert!(stderr(&apdu).contains("not hex bytes"), "{}", stderr(&apdu));
}

#[test]
fn a_mistyped_level_or_role_is_a_usage_error_that_lists_the_choices() {
    let scratch = Scratch::new("scp11-enum");
    let dir = &scratch.0;
    // Refused while parsing the command line: no key file, reader or card is touched.
    let level = linkcard(
        &[
            "scp11",
            "send",
            "-r",
            "0",
            "--card-ca",
            "ca.key",
            "--scp11b",
            "--level",
            "ful",
            "80F2400202 4F00 00",
        ],
        dir,
    );
    assert_eq!(level.status.code(), Some(2), "{}", stderr(&level));
    let errors = stderr(&level);
    assert!(
        errors.contains("invalid value 'ful' for '--level <LEVEL>'"),
        "{errors}"
    );
    assert!(
        errors.contains("[possible values: mac, mac-enc, mac-rmac, full]"),
        "{errors}"
    );
    assert!(
        errors.contains("'full'"),
        "suggests the near miss: {errors}"
    );

    let role = linkcard(
        &[
            "scp11",
            "issue",
            "--ca",
            "ca.key",
            "--role",
            "bankatm",
            "--subject",
            "x",
            "--out",
            "x",
        ],
        dir,
    );
    assert_eq!(role.status.code(), Some(2));
    let errors = stderr(&role);
    assert!(
        errors.contains("[possible values: issuer, bank-atm, credit-pos, token-delivery]"),
        "{errors}"
    );
    assert!(!dir.join("x.key").exists(), "nothing written");

    // Every level is accepted by the parser (the run then fails later, on the missing key file).
    for level in ["mac", "mac-enc", "mac-rmac", "full"] {
        let output = linkcard(
            &[
                "scp11",
                "send",
                "-r",
                "0",
                "--card-ca",
                "none.key",
                "--scp11b",
                "--level",
                level,
                "80F24002024F0000",
            ],
            dir,
        );
        assert_eq!(output.status.code(), Some(2), "{level}");
        assert!(
            stderr(&output).contains("cannot read none.key"),
            "{level}: {}",
            stderr(&output)
        );
    }
}

/// The workspace's SCP11 test keys (tests/fixtures/scp11).
const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/scp11");

#[test]
fn errors_in_included_files_name_that_file_and_line() {
    let scratch = Scratch::new("include");
    std::fs::create_dir_all(scratch.0.join("lib")).unwrap();
    scratch.write("lib/broken.apdu", "reset\n> 80 FF 0\n< 6D 00\n");
    let broken = scratch.write("a.apdu", "# A\ninclude lib/broken.apdu\n");
    let missing = scratch.write("b.apdu", "# B\nreset\ninclude lib/missing.apdu\n");
    let output = linkcard(
        &[
            "conformance",
            "check",
            broken.to_str().unwrap(),
            missing.to_str().unwrap(),
        ],
        &scratch.0,
    );
    assert_eq!(output.status.code(), Some(2));
    let errors = stderr(&output);
    let lines: Vec<&str> = errors.lines().collect();
    assert_eq!(
        lines[0],
        format!(
            "{}: odd number of hex digits: the last byte is incomplete",
            scratch.0.join("lib/broken.apdu:2").display()
        )
    );
    assert!(
        lines[1].starts_with(&format!(
            "{}:3: cannot include: {}: cannot read: ",
            missing.display(),
            scratch.0.join("lib/missing.apdu").display()
        )),
        "{errors}"
    );
}

#[test]
fn a_secured_script_runs_with_the_workspace_test_keys() {
    let scratch = Scratch::new("secured");
    let script = scratch.write(
        "secured.apdu",
        &format!(
            "# Issuer session\nkeys {KEYS}\n> 00 A4 04 0C 00\n< 90 00\npersonalize\nopen scp11a issuer mac\n\
             > 80 F2 80 02 02 4F 00 00\n< E3 13 4F 08 A000000151000000 * 90 00\nclose\n"
        ),
    );
    let output = linkcard(
        &["conformance", "run", script.to_str().unwrap()],
        &scratch.0,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert_eq!(
        stdout(&output).lines().next(),
        Some("PASS secured.apdu (2 exchanges) - Issuer session")
    );
    // The fixtures are `linkcard scp11` files: the OCE CA verifies the issuer's certificate.
    let output = linkcard(
        &[
            "scp11",
            "show",
            &format!("{KEYS}/issuer.cert"),
            "--ca",
            &format!("{KEYS}/oce-ca.key"),
        ],
        &scratch.0,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stdout(&output).contains("role:        issuer"));
}
