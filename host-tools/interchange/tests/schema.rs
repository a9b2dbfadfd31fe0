//! Every message this crate writes is valid against the official ISO 20022 schema of its message (tests/xsd), as
//! `xmllint` (libxml2) checks it; the settlement split also against our own schema (schema/). A deliberately
//! broken file fails, so the check can fail.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use interchange::{Deduction, MAX_AMOUNT, ReasonCode, TokenConfirmation, TransactionStatus};
use proptest::prelude::*;

const PAIN_008: &str = "pain.008.001.08.xsd";
const PAIN_002: &str = "pain.002.001.10.xsd";
const CAMT_054: &str = "camt.054.001.08.xsd";

fn official_schema(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/xsd")
        .join(name)
}

/// A schema importing pain.002.001.10 and our settlement schema, so `Envlp`'s lax content is checked too.
fn status_with_settlement_schema(directory: &Path) -> PathBuf {
    let settlement =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/linkcard.settlement.001.xsd");
    let schema = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <xs:import namespace="urn:iso:std:iso:20022:tech:xsd:pain.002.001.10" schemaLocation="{}"/>
  <xs:import namespace="urn:linkcard:xsd:settlement.001" schemaLocation="{}"/>
</xs:schema>
"#,
        official_schema(PAIN_002).display(),
        settlement.display()
    );
    let path = directory.join("pain.002.001.10+settlement.xsd");
    std::fs::write(&path, schema).expect("schema written");
    path
}

/// Runs `xmllint --noout --schema SCHEMA FILE`: whether it validates, and what it said.
fn xmllint(schema: &Path, xml: &[u8], directory: &Path, name: &str) -> (bool, String) {
    let file = directory.join(name);
    std::fs::write(&file, xml).expect("file written");
    let output = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(schema)
        .arg(&file)
        .output()
        .expect("xmllint runs (Debian package libxml2-utils; scripts/lib.sh installs it)");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn assert_valid(schema: &Path, xml: &[u8], name: &str) {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let (valid, said) = xmllint(schema, xml, directory.path(), name);
    assert!(
        valid,
        "{name} is not valid against {}: {said}\n{}",
        schema.display(),
        String::from_utf8_lossy(xml)
    );
}

fn longest_deduction() -> Deduction {
    Deduction {
        end_to_end_id: "E".repeat(35),
        mandate_id: "M".repeat(35),
        user_id: "U".repeat(35),
        name: "日本 & <Ünïcödé> \"quoted\" 'name'"
            .repeat(4)
            .chars()
            .take(140)
            .collect::<String>()
            .trim()
            .to_owned(),
        debtor_account: "A".repeat(34),
        amount: MAX_AMOUNT,
        token_ids: vec![[0xff; 16]; 5],
    }
}

#[test]
fn deduction_files_are_valid_pain_008_001_08() {
    let schema = official_schema(PAIN_008);
    assert_valid(
        &schema,
        &sample_deductions(EUR).to_xml().expect("written"),
        "eur.xml",
    );
    assert_valid(
        &schema,
        &sample_deductions(JPY).to_xml().expect("written"),
        "jpy.xml",
    );
    let without_tokens =
        deduction_file(840, vec![deduction(1, 1, vec![]), deduction(2, 99, vec![])]);
    assert_valid(
        &schema,
        &without_tokens.to_xml().expect("written"),
        "usd-no-tokens.xml",
    );
    let extremes = deduction_file(JPY, vec![longest_deduction()]);
    assert_valid(
        &schema,
        &extremes.to_xml().expect("written"),
        "extremes.xml",
    );
}

#[test]
fn status_reports_are_valid_pain_002_001_10_with_the_settlement_split() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let with_settlement = status_with_settlement_schema(directory.path());
    let all_accepted = status_report(
        EUR,
        vec![
            status(1, TransactionStatus::Accepted, None, (100, 0, 100), vec![]),
            status(
                2,
                TransactionStatus::Accepted,
                None,
                (250, 250, 0),
                vec![TokenConfirmation {
                    token_id: [9; 16],
                    confirmed: true,
                    drawn: 250,
                    remaining: 0,
                }],
            ),
        ],
    );
    let variants = [
        ("mixed-jpy.xml", sample_status_report(JPY)),
        ("mixed-eur.xml", sample_status_report(EUR)),
        ("accepted.xml", all_accepted),
        (
            "partial-gbp.xml",
            status_report(
                826,
                vec![status(
                    1,
                    TransactionStatus::Partial,
                    Some(ReasonCode::InsufficientFunds),
                    (MAX_AMOUNT, 1, 1),
                    vec![],
                )],
            ),
        ),
    ];
    for (name, report) in variants {
        let xml = report.to_xml().expect("written");
        assert_valid(&official_schema(PAIN_002), &xml, name);
        assert_valid(&with_settlement, &xml, name);
    }
}

#[test]
fn transfer_notices_are_valid_camt_054_001_08() {
    let schema = official_schema(CAMT_054);
    assert_valid(
        &schema,
        &sample_notice(EUR).to_xml().expect("written"),
        "eur.xml",
    );
    assert_valid(
        &schema,
        &sample_notice(JPY).to_xml().expect("written"),
        "jpy.xml",
    );
    let one = transfer_notice(
        756,
        vec![interchange::NoticeEntry {
            end_to_end_id: "X".repeat(35),
            amount: MAX_AMOUNT,
        }],
    );
    assert_valid(&schema, &one.to_xml().expect("written"), "chf-one.xml");
}

#[test]
fn the_validator_refuses_invalid_files() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let deductions =
        String::from_utf8(sample_deductions(EUR).to_xml().expect("written")).expect("UTF-8");
    let broken = [
        (
            PAIN_008,
            deductions.replace("<PmtMtd>DD</PmtMtd>", "<PmtMtd>XX</PmtMtd>"),
        ),
        (
            PAIN_008,
            deductions.replacen("<MsgId>DED-2026-01-31</MsgId>", "", 1),
        ),
        (PAIN_008, deductions.replace("Ccy=\"EUR\"", "Ccy=\"eur\"")),
        (
            CAMT_054,
            String::from_utf8(sample_notice(EUR).to_xml().expect("written"))
                .expect("UTF-8")
                .replace(
                    "<CdtDbtInd>CRDT</CdtDbtInd>",
                    "<CdtDbtInd>CREDIT</CdtDbtInd>",
                ),
        ),
        (
            PAIN_008,
            String::from_utf8(sample_notice(EUR).to_xml().expect("written")).expect("UTF-8"),
        ),
    ];
    for (index, (schema, xml)) in broken.iter().enumerate() {
        let (valid, _) = xmllint(
            &official_schema(schema),
            xml.as_bytes(),
            directory.path(),
            &format!("broken-{index}.xml"),
        );
        assert!(
            !valid,
            "broken file {index} passed validation against {schema}"
        );
    }
    // Our schema makes the envelope strict: an uppercase token id passes the lax ISO schema only.
    let report =
        String::from_utf8(sample_status_report(EUR).to_xml().expect("written")).expect("UTF-8");
    let uppercase = report.replace(
        "<Id>abababababababababababababababab</Id>",
        "<Id>ABABABABABABABABABABABABABABABAB</Id>",
    );
    assert!(uppercase != report);
    let (lax, _) = xmllint(
        &official_schema(PAIN_002),
        uppercase.as_bytes(),
        directory.path(),
        "upper.xml",
    );
    assert!(lax, "the ISO schema does not look into Envlp");
    let with_settlement = status_with_settlement_schema(directory.path());
    let (strict, said) = xmllint(
        &with_settlement,
        uppercase.as_bytes(),
        directory.path(),
        "upper.xml",
    );
    assert!(
        !strict && said.contains("Id"),
        "our schema refuses an uppercase token id: {said}"
    );
}

fn valid_against(schema: &Path, xml: &[u8]) -> Result<(), TestCaseError> {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let (valid, said) = xmllint(schema, xml, directory.path(), "generated.xml");
    prop_assert!(valid, "{said}\n{}", String::from_utf8_lossy(xml));
    Ok(())
}

proptest! {
    // Each case starts xmllint: a few dozen random files per message, on top of the fixed variants above.
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn generated_deduction_files_are_valid(file in deduction_file_strategy()) {
        valid_against(&official_schema(PAIN_008), &file.to_xml().expect("written"))?;
    }

    #[test]
    fn generated_status_reports_are_valid(report in status_report_strategy()) {
        let directory = tempfile::tempdir().expect("a temporary directory");
        valid_against(&status_with_settlement_schema(directory.path()), &report.to_xml().expect("written"))?;
    }

    #[test]
    fn generated_notices_are_valid(notice in notice_strategy()) {
        valid_against(&official_schema(CAMT_054), &notice.to_xml().expect("written"))?;
    }
}
