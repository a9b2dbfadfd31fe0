//! The runner's secure-channel steps on the real in-process card: commands inside a session really travel
//! wrapped and the patterns see the opened answers, a tampered answer fails the step, the chained OCE is uploaded
//! with P2 b8, refusals read clearly, captures carry values, failures inside definitions say where, and the
//! whole suite runs on one shared card in the order the system test uses.

use std::path::Path;

use card_client::{CardChannel, ChannelError};
use conformance::runner::{ScriptOutcome, run_on_channel, run_script};
use conformance::script::{Script, parse_files, parse_str};
use emulator::InProcessChannel;
use linkcard_tests::conformance_dir;

/// A script as if it stood in `tests/conformance` (so `include lib/...` and `keys ../fixtures/scp11` resolve).
fn script(text: &str) -> Script {
    parse_str(&conformance_dir().join("test.apdu"), text).unwrap()
}

/// The card manager personalized with the test keys, selected.
const PERSONALIZED: &str =
    "include lib/common.apdu\nkeys ../fixtures/scp11\ncall select-card-manager\npersonalize\n";

/// The wire between host and card: records every APDU, and can flip a bit in the answers to secured commands.
struct Wire {
    card: InProcessChannel,
    sent: Vec<Vec<u8>>,
    tamper: bool,
}

impl Wire {
    fn new() -> Self {
        Self {
            card: InProcessChannel::new().unwrap(),
            sent: Vec::new(),
            tamper: false,
        }
    }

    fn run(&mut self, text: &str) -> ScriptOutcome {
        run_script(&script(text), self)
    }

    /// Whether some APDU sent starts with `header`.
    fn sent_with(&self, header: &[u8]) -> bool {
        self.sent.iter().any(|apdu| apdu.starts_with(header))
    }
}

impl CardChannel for Wire {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ChannelError> {
        self.sent.push(apdu.to_vec());
        let mut response = self.card.transmit(apdu)?;
        if self.tamper && apdu.first() == Some(&0x84) && response.len() > 2 {
            response[0] ^= 0x01;
        }
        Ok(response)
    }
    fn reset(&mut self) -> Result<Vec<u8>, ChannelError> {
        self.card.reset()
    }
    fn power_off(&mut self) -> Result<(), ChannelError> {
        self.card.power_off()
    }
    fn power_on(&mut self) -> Result<Vec<u8>, ChannelError> {
        self.card.power_on()
    }
    fn describe(&self) -> String {
        "recording wire".into()
    }
}

#[test]
fn secured_commands_travel_wrapped_and_patterns_match_the_opened_answers() {
    let mut wire = Wire::new();
    let outcome = wire.run(&format!(
        "{PERSONALIZED}open scp11a issuer\ncall install F04C4E4B43FF30\n\
         > 80 F2 40 02 09 4F 07 F04C4E4B43FF30 00\n< E3 1A 4F 07 F04C4E4B43FF30 9F70 01 07 * 90 00\n\
         call delete F04C4E4B43FF30\nclose\n"
    ));
    assert!(outcome.passed, "{outcome:?}");
    assert_eq!(outcome.exchanges, 4);
    // After the handshake, INSTALL, GET STATUS and DELETE went with CLA 84 and encrypted data, never plainly.
    let handshake = wire
        .sent
        .iter()
        .position(|a| a.starts_with(&[0x80, 0x82]))
        .unwrap();
    let after: Vec<&Vec<u8>> = wire.sent[handshake + 1..].iter().collect();
    assert_eq!(after.len(), 3);
    assert!(after.iter().all(|apdu| apdu[0] == 0x84), "{after:02X?}");
    assert!(
        !after[1]
            .windows(7)
            .any(|w| w == [0xF0, 0x4C, 0x4E, 0x4B, 0x43, 0xFF, 0x30])
    );
    assert!(!wire.sent_with(&[0x80, 0xE6, 0x0C, 0x00]));
}

#[test]
fn a_wrong_pattern_inside_a_session_fails_with_the_opened_answer() {
    let mut wire = Wire::new();
    let outcome = wire.run(&format!(
        "{PERSONALIZED}open scp11a issuer full\n> 80 F2 80 02 02 4F 00 00\n< 90 00\n"
    ));
    let failure = outcome.failure.unwrap();
    assert_eq!(failure.line, Some(6));
    assert_eq!(failure.step, "> 80 F2 80 02 02 4F 00 00");
    let actual = failure.actual.unwrap();
    assert!(
        actual.starts_with("E3 13 4F 08 A0 00 00 01 51 00 00 00"),
        "{actual}"
    );
    assert_eq!(
        failure.reason,
        "response is 23 byte(s); the pattern needs exactly 2"
    );
}

#[test]
fn a_tampered_answer_fails_the_step() {
    let mut wire = Wire::new();
    wire.tamper = true;
    let outcome = wire.run(&format!(
        "{PERSONALIZED}open scp11a issuer mac-rmac\n> 80 F2 80 02 02 4F 00 00\n< * 90 00\n"
    ));
    let failure = outcome.failure.unwrap();
    assert_eq!(failure.line, Some(6));
    assert!(
        failure.reason == "secure channel failed: MAC or receipt does not verify",
        "{}",
        failure.reason
    );
    assert_eq!(failure.actual, None);
}

#[test]
fn the_chained_oce_uploads_its_chain_with_p2_b8() {
    let mut wire = Wire::new();
    let outcome = wire.run(&format!(
        "{PERSONALIZED}open scp11a chained\ncall install F04C4E4B43FF30\ncall delete F04C4E4B43FF30\n"
    ));
    assert!(outcome.passed, "{outcome:?}");
    let link = wire
        .sent
        .iter()
        .position(|a| a.starts_with(&[0x80, 0x2A, 0x03, 0x90]));
    let leaf = wire
        .sent
        .iter()
        .position(|a| a.starts_with(&[0x80, 0x2A, 0x03, 0x10]));
    assert!(
        matches!((link, leaf), (Some(l), Some(f)) if f == l + 1),
        "{:02X?}",
        wire.sent
    );
}

#[test]
fn refused_handshakes_and_personalization_read_clearly() {
    // No key yet: GET DATA BF21 reaches the card manager, which does not take CLA 00.
    let failure = Wire::new()
        .run("keys ../fixtures/scp11\nopen scp11b\n")
        .failure
        .unwrap();
    assert_eq!(failure.step, "open scp11b full");
    assert_eq!(
        failure.reason,
        "GET DATA BF21: card answered 6E00 CLA_NOT_SUPPORTED"
    );
    // An `open` that had to succeed against one that is refused: the status is compared and named.
    let failure = Wire::new()
        .run(&format!("{PERSONALIZED}open scp11a stranger\n< 90 00\n"))
        .failure
        .unwrap();
    assert_eq!(failure.actual.as_deref(), Some("69 82"));
    assert_eq!(failure.expected.unwrap().line, 6);
    assert_eq!(
        failure.reason,
        "PERFORM SECURITY OPERATION: card answered 6982 SECURITY_STATUS_NOT_SATISFIED: byte 0 is 69; the pattern wants 90"
    );
    // One that had to be refused but opened.
    let failure = Wire::new()
        .run(&format!("{PERSONALIZED}open scp11a issuer\n< 69 82\n"))
        .failure
        .unwrap();
    assert_eq!(failure.actual.as_deref(), Some("90 00"));
    // Personalization of an instance that is not there.
    let failure = Wire::new()
        .run(&format!("{PERSONALIZED}personalize F04C4E4B43FF77\n"))
        .failure
        .unwrap();
    assert!(
        failure
            .reason
            .starts_with("INSTALL [for personalization]: not found (card answered 6A88"),
        "{}",
        failure.reason
    );
    assert!(
        Wire::new()
            .run(&format!(
                "{PERSONALIZED}personalize F04C4E4B43FF77\n< 6A 88\n"
            ))
            .passed
    );
}

#[test]
fn captures_carry_values_and_failures_show_the_command_as_sent() {
    let outcome = Wire::new().run(
        "> 00 70 00 00 01\n< {CH:1} 90 00\n> 00 70 80 {CH}\n< 90 00\n> 00 70 80 {CH}\n< 90 00\n",
    );
    let failure = outcome.failure.unwrap();
    assert_eq!(failure.line, Some(5));
    assert_eq!(failure.step, "> 00 70 80 01");
    assert_eq!(failure.actual.as_deref(), Some("68 81"));
}

#[test]
fn failures_inside_definitions_say_where_they_are_written() {
    let outcome = Wire::new().run("include lib/common.apdu\n\ncall delete F04C4E4B43FF77\n");
    let failure = outcome.failure.as_ref().unwrap();
    assert_eq!(failure.line, Some(3));
    let source = failure.source.as_deref().unwrap();
    let library = std::fs::read_to_string(conformance_dir().join("lib/common.apdu")).unwrap();
    let written = 1 + library
        .lines()
        .position(|l| l == "> 80 E4 00 00 09 4F 07 {AID} 00")
        .unwrap();
    assert!(
        source.ends_with(&format!("lib/common.apdu:{written} in delete")),
        "{source}"
    );
    let report = conformance::Report::new("wire".into(), vec![outcome.clone()]);
    let text = report.human();
    assert!(
        text.contains(&format!(
            "    line 3 ({source}): > 80 E4 00 00 09 4F 07 F0 4C 4E 4B 43 FF 77 00\n"
        )),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&report.to_json().unwrap()).unwrap();
    assert_eq!(json["scripts"][0]["failure"]["source"], source);
}

/// The system test's order on one card that keeps its state: every script below 90, then 90 (91 needs a card of
/// its own). Secured scripts re-personalize the card manager; each cleans up what it installs.
#[test]
fn the_suite_runs_on_one_shared_card_in_the_system_test_order() {
    let dir = conformance_dir();
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "apdu"))
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with("91-"))
        .collect();
    paths.sort();
    let scripts = parse_files(&paths).unwrap();
    assert!(scripts.iter().any(|s| s.name.starts_with("10-")));
    let mut card = InProcessChannel::new().unwrap();
    let report = run_on_channel(&scripts, &mut card);
    assert!(report.all_passed(), "{}", report.human());
    assert!(Path::new(&report.scripts[0].path).exists());
}
