//! Settlement day through the binary (patent Fig. 8, 11): `credit statement`, `bank settle`, `credit reconcile`
//! with their signed ISO 20022 files, checked by `xmllint` against the official schemas and by `openssl`;
//! files refused whole when altered, cut short, signed by another or replayed; and a crash at every step
//! boundary and commit (`LINKCARD_CRASH_AT`), each completed by a re-run in a fresh process to the same state a
//! run without a crash reaches.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const XSD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../interchange/tests/xsd");
const DATE: &str = "2027-01-10";

/// Hanako bought 30,000 after a 25,000 deposit at the ATM (its token reflected).
fn story() -> Linkcard {
    let linkcard = Linkcard::new();
    linkcard.with_card();
    linkcard.json(&["atm", "deposit", "--card", "hanako", "--amount", "25000"]);
    linkcard.purchase("30000", 0);
    linkcard
}

fn files(linkcard: &Linkcard) -> String {
    linkcard.path("files")
}

fn statement(linkcard: &Linkcard) -> PathBuf {
    let made = linkcard.json(&[
        "credit",
        "statement",
        "--bank",
        "BANK0001",
        "--date",
        DATE,
        "--out",
        &files(linkcard),
    ]);
    PathBuf::from(made["file"].as_str().expect("a deduction file"))
}

fn settle(linkcard: &Linkcard, deductions: &Path) -> (PathBuf, PathBuf, Value) {
    let settled = linkcard.json(&[
        "bank",
        "settle",
        deductions.to_str().unwrap(),
        "--out",
        &files(linkcard),
    ]);
    let path = |key: &str| PathBuf::from(settled[key].as_str().expect("a file"));
    (path("report"), path("notice"), settled)
}

fn reconcile(linkcard: &Linkcard, report: &Path, notice: &Path) -> Value {
    linkcard.json(&[
        "credit",
        "reconcile",
        "--report",
        report.to_str().unwrap(),
        "--notice",
        notice.to_str().unwrap(),
    ])
}

fn xmllint(schema: &str, file: &Path) {
    let output = Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(format!("{XSD}/{schema}"))
        .arg(file)
        .output()
        .expect("xmllint (Debian libxml2-utils) runs");
    assert!(
        output.status.success(),
        "{} against {schema}: {}",
        file.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn openssl_verifies(public_key: &str, file: &Path) {
    let output = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify", public_key, "-signature"])
        .arg(file.with_extension("sig"))
        .arg(file)
        .output()
        .expect("openssl runs");
    assert!(
        output.status.success(),
        "{}: {}",
        file.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn settlement_day_with_signed_schema_valid_files() {
    let linkcard = story();
    let deductions = statement(&linkcard);
    xmllint("pain.008.001.08.xsd", &deductions);
    openssl_verifies(&linkcard.path("credit/identity.pub"), &deductions);
    let (report, notice, settled) = settle(&linkcard, &deductions);
    assert_eq!(
        (
            settled["from_pool"].as_u64(),
            settled["from_personal"].as_u64()
        ),
        (Some(25_000), Some(5_000))
    );
    xmllint("pain.002.001.10.xsd", &report);
    xmllint("camt.054.001.08.xsd", &notice);
    openssl_verifies(&linkcard.path("bank/identity.pub"), &report);
    openssl_verifies(&linkcard.path("bank/identity.pub"), &notice);
    let reconciled = reconcile(&linkcard, &report, &notice);
    assert_eq!(reconciled["received"], 30_000);
    assert_eq!(reconciled["reflected_amount_posted"], 25_000);
    assert_eq!(reconciled["flagged"], Value::Array(Vec::new()));
    let (bank, credit) = linkcard.balances();
    assert_eq!(
        (bank["pool"].as_u64(), bank["personal"].as_u64()),
        (Some(0), Some(95_000))
    );
    assert_eq!(
        (
            credit["outstanding"].as_u64(),
            credit["pending_credits"].as_u64()
        ),
        (Some(0), Some(0))
    );

    // Importing the same files again changes nothing.
    let report_bytes = std::fs::read(&report).unwrap();
    settle(&linkcard, &deductions);
    assert_eq!(std::fs::read(&report).unwrap(), report_bytes);
    reconcile(&linkcard, &report, &notice);
    assert_eq!(linkcard.balances(), (bank, credit));
}

#[test]
fn altered_truncated_and_foreign_files_are_refused_whole() {
    let linkcard = story();
    let deductions = statement(&linkcard);
    let original = std::fs::read(&deductions).unwrap();
    let before = linkcard.balances();
    let text = String::from_utf8(original.clone()).unwrap();
    let altered = text.replacen(
        "<InstdAmt Ccy=\"JPY\">30000",
        "<InstdAmt Ccy=\"JPY\">3000",
        1,
    );
    assert_ne!(altered, text, "the amount is in the file");
    let refusals: [(&str, Vec<u8>); 3] = [
        ("altered", altered.into_bytes()),
        ("truncated", original[..original.len() / 2].to_vec()),
        ("appended", [original.as_slice(), b"\n"].concat()),
    ];
    for (what, bytes) in refusals {
        std::fs::write(&deductions, &bytes).unwrap();
        linkcard.refused(
            &["bank", "settle", deductions.to_str().unwrap()],
            "is refused",
        );
        assert_eq!(linkcard.balances(), before, "{what}");
    }
    std::fs::write(&deductions, &original).unwrap();
    // Signed by the bank itself, not by the credit company: refused.
    let signature = deductions.with_extension("sig");
    let good_signature = std::fs::read(&signature).unwrap();
    let forged = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(linkcard.path("bank/identity.key"))
        .arg("-out")
        .arg(&signature)
        .arg(&deductions)
        .output()
        .expect("openssl runs");
    assert!(
        forged.status.success(),
        "{}",
        String::from_utf8_lossy(&forged.stderr)
    );
    linkcard.refused(
        &["bank", "settle", deductions.to_str().unwrap()],
        "is refused",
    );
    std::fs::remove_file(&signature).unwrap();
    linkcard.refused(
        &["bank", "settle", deductions.to_str().unwrap()],
        "is refused",
    );
    assert_eq!(linkcard.balances(), before);
    std::fs::write(&signature, good_signature).unwrap();
    let (report, notice, _) = settle(&linkcard, &deductions);
    // The report answered with the deduction file as the notice: another kind of file.
    linkcard.refused(
        &[
            "credit",
            "reconcile",
            "--report",
            report.to_str().unwrap(),
            "--notice",
            deductions.to_str().unwrap(),
        ],
        "is refused",
    );
    reconcile(&linkcard, &report, &notice);
}

/// [`story`], and Taro, who bought 12,000 with no deposit: a statement of two deductions.
fn story_of_two() -> Linkcard {
    let linkcard = story();
    let taro = [
        &[
            "bank",
            "customer",
            "add",
            "--user",
            "U-000043",
            "--name",
            "Taro Sato",
            "--account",
            "0001-234-5678902",
        ][..],
        &["bank", "cash-in", "--user", "U-000043", "50,000"],
        &[
            "credit",
            "cardholder",
            "add",
            "--id",
            "CH-000043",
            "--name",
            "Taro Sato",
            "--limit",
            "50,000",
        ],
        &[
            "card",
            "issue",
            "--card",
            "taro",
            "--user",
            "U-000043",
            "--cardholder",
            "CH-000043",
            "--pan",
            "5555555555554444",
            "--pin",
            "1357",
        ],
        &[
            "pos", "purchase", "--card", "taro", "--amount", "12000", "--pin", "1357",
        ],
    ];
    for args in taro {
        linkcard.json(args);
    }
    linkcard
}

/// Both users' balances at the bank and the credit company.
fn balances_of_both(linkcard: &Linkcard) -> Vec<Value> {
    let (bank, credit) = linkcard.balances();
    vec![
        bank,
        credit,
        linkcard.json(&["bank", "balance", "--user", "U-000043"]),
        linkcard.json(&["credit", "account", "--cardholder", "CH-000043"]),
    ]
}

/// A run that crashes at `point` and is completed by a second run, from a fresh story each time; `chunk` sets the
/// chunk size of every run (`LINKCARD_CHUNK`).
fn crashed_then_completed(linkcard: &Linkcard, point: &str, chunk: &str) {
    let crash = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_linkcard"))
            .arg("--data-dir")
            .arg(linkcard.dir.path())
            .args(args)
            .env("LINKCARD_CRASH_AT", point)
            .env("LINKCARD_CHUNK", chunk)
            .output()
            .expect("linkcard runs");
        output.status.success()
    };
    let statement_args = [
        "credit",
        "statement",
        "--bank",
        "BANK0001",
        "--date",
        DATE,
        "--out",
        &files(linkcard),
    ];
    let crashed = !crash(&statement_args);
    let deductions = statement(linkcard);
    let settle_args = [
        "bank",
        "settle",
        deductions.to_str().unwrap(),
        "--out",
        &files(linkcard),
    ];
    let crashed = crashed | !crash(&settle_args);
    let (report, notice, _) = settle(linkcard, &deductions);
    let reconcile_args = [
        "credit",
        "reconcile",
        "--report",
        report.to_str().unwrap(),
        "--notice",
        notice.to_str().unwrap(),
    ];
    let crashed = crashed | !crash(&reconcile_args);
    reconcile(linkcard, &report, &notice);
    assert!(crashed, "no command crashed at {point}");
}

#[test]
fn a_crash_at_any_step_is_completed_by_a_rerun_with_nothing_taken_twice() {
    let clean = {
        let linkcard = story();
        let deductions = statement(&linkcard);
        let (report, notice, _) = settle(&linkcard, &deductions);
        reconcile(&linkcard, &report, &notice);
        linkcard.balances()
    };
    for point in [
        "statement:begun",
        "statement:chunk:1",
        "statement:written",
        "settle:begun",
        "settle:chunk:1",
        "settle:finished",
        "settle:report-written",
        "settle:written",
        "reconcile:checked",
        "reconcile:chunk:1",
        "reconcile:finished",
    ] {
        let linkcard = story();
        crashed_then_completed(&linkcard, point, "10000");
        assert_eq!(linkcard.balances(), clean, "crash at {point}");
    }
}

#[test]
fn a_crash_between_chunks_of_a_longer_file_is_completed_by_a_rerun() {
    let clean = {
        let linkcard = story_of_two();
        let deductions = statement(&linkcard);
        let xml = std::fs::read_to_string(&deductions).unwrap();
        assert_eq!(xml.matches("<DrctDbtTxInf>").count(), 2, "two deductions");
        let (report, notice, _) = settle(&linkcard, &deductions);
        reconcile(&linkcard, &report, &notice);
        balances_of_both(&linkcard)
    };
    // One deduction per chunk: a statement resumed after its first chunk, a settlement and a reconciliation
    // stopped after their first (committed or not: the reader may not have said "whole" yet).
    for point in ["statement:chunk:1", "settle:chunk:1", "reconcile:chunk:1"] {
        let linkcard = story_of_two();
        crashed_then_completed(&linkcard, point, "1");
        assert_eq!(balances_of_both(&linkcard), clean, "crash at {point}");
    }
}
