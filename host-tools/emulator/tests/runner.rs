//! The conformance runner on the real in-process card: fresh cards per script, a shared card reset between
//! scripts, where a script stops and what the report says. (The runner's crate, `conformance`, does not link the
//! card; its card-free tests are next to the code.)

use std::path::Path;

use conformance::runner::{Report, run_each, run_on_channel, run_script};
use conformance::script::{Script, parse_str};
use emulator::{IN_PROCESS_DESCRIPTION, InProcessChannel};

fn script(text: &str) -> Script {
    parse_str(Path::new("t/test.apdu"), text).unwrap()
}

fn card() -> InProcessChannel {
    InProcessChannel::new().unwrap()
}

/// Each script on a fresh in-process card, as `linkcard conformance run` does by default.
fn in_process(scripts: &[Script], trace: bool) -> Report {
    run_each(
        scripts,
        IN_PROCESS_DESCRIPTION,
        trace,
        InProcessChannel::new,
    )
    .unwrap()
}

const SELECT_CM: &str = "> 00 A4 04 00 08 A000000151000000 00\n";

#[test]
fn passing_script_counts_exchanges() {
    let s = script(&format!(
        "# Smoke\n{SELECT_CM}< 6F 10 84 08 A000000151000000 A5 04 9F 65 01 FF 90 00\n\
         > 80 FF 00 00\n< 6D 00\nreset\n< 3B 8A *\npower off\npower on\n< 3B *\n"
    ));
    let outcome = run_script(&s, &mut card());
    assert!(outcome.passed, "{outcome:?}");
    assert_eq!(outcome.exchanges, 2);
    assert_eq!(outcome.title.as_deref(), Some("Smoke"));
}

#[test]
fn script_stops_at_first_mismatch_with_details() {
    let s = script(&format!(
        "{SELECT_CM}< * 90 00\n> 80 FF 00 00\n< 90 00\n> 80 FF 00 00\n< 6D 00\n"
    ));
    let outcome = run_script(&s, &mut card());
    assert!(!outcome.passed);
    assert_eq!(outcome.exchanges, 2, "the third command is never sent");
    let failure = outcome.failure.unwrap();
    assert_eq!(failure.line, Some(3));
    assert_eq!(failure.step, "> 80 FF 00 00");
    let expected = failure.expected.unwrap();
    assert_eq!(expected.line, 4);
    assert_eq!(expected.pattern, "90 00");
    assert_eq!(expected.status.unwrap().name, "SUCCESS");
    assert_eq!(failure.actual.as_deref(), Some("6D 00"));
    assert_eq!(failure.actual_status.unwrap().name, "INS_NOT_SUPPORTED");
    assert_eq!(failure.reason, "byte 0 is 6D; the pattern wants 90");
}

#[test]
fn atr_mismatch_has_no_status_names() {
    let s = script("power on\n< 3F *\n");
    let failure = run_script(&s, &mut card()).failure.unwrap();
    assert_eq!(failure.step, "power on");
    assert!(failure.actual.unwrap().starts_with("3B "));
    assert_eq!(failure.actual_status, None);
    assert_eq!(failure.expected.unwrap().status, None);
}

#[test]
fn unpowered_card_answers_6f00() {
    let s = script("power off\n> 80 FF 00 00\n< 6F 00\n");
    assert!(run_script(&s, &mut card()).passed);
}

#[test]
fn shared_channel_is_reset_between_scripts() {
    // The first script leaves the card unpowered; the reset before the second powers it again.
    let first = script("power off\n> 80 FF 00 00\n< 6F 00\n");
    let second = script("> 80 FF 00 00\n< 6D 00\n");
    let report = run_on_channel(&[first, second], &mut card());
    assert!(report.all_passed(), "{}", report.human());
}

#[test]
fn in_process_runs_use_fresh_cards() {
    let first = script("power off\n> 80 FF 00 00\n< 6F 00\n");
    let second = script("> 80 FF 00 00\n< 6D 00\n");
    let report = in_process(&[first.clone(), second, first], false);
    assert!(report.all_passed(), "{}", report.human());
    assert_eq!((report.passed, report.failed), (3, 0));
}

#[test]
fn human_report_format() {
    let pass = script("# Unknown INS\n> 80 FF 00 00\n< 6D 00\n");
    let mut fail = script(&format!("{SELECT_CM}< 6X XX\n"));
    fail.name = "02-fail.apdu".into();
    let report = in_process(&[pass, fail], false);
    let text = report.human();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "PASS test.apdu (1 exchange) - Unknown INS");
    assert_eq!(lines[1], "FAIL 02-fail.apdu (1 exchange)");
    assert_eq!(
        lines[2],
        "    line 1: > 00 A4 04 00 08 A0 00 00 01 51 00 00 00 00"
    );
    assert_eq!(lines[3], "    expected (line 2): 6X XX");
    assert!(lines[4].starts_with("    actual: 6F 10 84 08 "), "{text}");
    assert!(lines[4].ends_with("90 00  [9000 SUCCESS]"), "{text}");
    assert_eq!(
        lines[5],
        "    response is 20 byte(s); the pattern needs exactly 2"
    );
    assert_eq!(*lines.last().unwrap(), "1 passed, 1 failed");
    assert!(text.ends_with('\n'));
}

#[test]
fn json_report() {
    let report = in_process(&[script("> 80 FF 00 00\n< 90 00\n")], false);
    let json: serde_json::Value = serde_json::from_str(&report.to_json().unwrap()).unwrap();
    assert_eq!(json["passed"], 0);
    assert_eq!(json["failed"], 1);
    let outcome = &json["scripts"][0];
    assert_eq!(outcome["name"], "test.apdu");
    assert_eq!(outcome["passed"], false);
    assert_eq!(outcome["failure"]["line"], 1);
    assert_eq!(outcome["failure"]["expected"]["status"]["name"], "SUCCESS");
    assert_eq!(outcome["failure"]["actual_status"]["sw"], "6D00");
    assert_eq!(
        outcome["failure"]["actual_status"]["name"],
        "INS_NOT_SUPPORTED"
    );
}
