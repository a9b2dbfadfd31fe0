//! Files and values that must be refused, each with the error that says why.

mod common;

use common::*;
use interchange::{
    DeductionFile, DeductionReader, DeductionWriter, FieldProblem, InterchangeError, MAX_AMOUNT,
    ReasonCode, StatusReport, TokenConfirmation, TransactionStatus, TransferNotice,
    TransferNoticeWriter,
};

/// The error under any `Item` wrappers.
fn cause(error: &InterchangeError) -> &InterchangeError {
    match error {
        InterchangeError::Item { source, .. } => cause(source),
        other => other,
    }
}

fn deduction_error(xml: &str) -> InterchangeError {
    DeductionFile::from_xml(xml.as_bytes()).expect_err("the file must be refused")
}

fn euro_file_xml() -> String {
    String::from_utf8(sample_deductions(EUR).to_xml().expect("written")).expect("UTF-8")
}

fn field_problem(error: &InterchangeError) -> Option<(&'static str, FieldProblem)> {
    match cause(error) {
        InterchangeError::Field { field, problem } => Some((field, problem.clone())),
        _ => None,
    }
}

#[test]
fn what_is_not_xml_is_refused() {
    assert!(matches!(
        deduction_error("hello"),
        InterchangeError::UnexpectedText { .. }
    ));
    assert!(matches!(
        deduction_error(""),
        InterchangeError::Truncated { .. }
    ));
    assert!(matches!(
        deduction_error("<Document"),
        InterchangeError::Xml { .. }
    ));
    assert!(matches!(
        deduction_error("<a></a>"),
        InterchangeError::WrongMessage { .. }
    ));
    let mismatched = euro_file_xml().replace("</MndtId>", "</MandateId>");
    assert!(matches!(
        deduction_error(&mismatched),
        InterchangeError::Xml { .. }
    ));
    let doctype = euro_file_xml().replace(
        "<Document",
        "<!DOCTYPE Document [<!ENTITY x \"y\">]>\n<Document",
    );
    assert!(matches!(
        deduction_error(&doctype),
        InterchangeError::DocType
    ));
    let latin1 = euro_file_xml().replace("encoding=\"UTF-8\"", "encoding=\"ISO-8859-1\"");
    assert!(
        matches!(deduction_error(&latin1), InterchangeError::Encoding(encoding) if encoding == "ISO-8859-1")
    );
}

/// Whether a reader refuses the given bytes.
type Refuses = fn(&[u8]) -> bool;

#[test]
fn every_truncation_is_refused() {
    let files: [(Vec<u8>, Refuses); 3] = [
        (sample_deductions(EUR).to_xml().expect("written"), |xml| {
            DeductionFile::from_xml(xml).is_err()
        }),
        (
            sample_status_report(JPY).to_xml().expect("written"),
            |xml| StatusReport::from_xml(xml).is_err(),
        ),
        (sample_notice(EUR).to_xml().expect("written"), |xml| {
            TransferNotice::from_xml(xml).is_err()
        }),
    ];
    for (xml, refuses) in &files {
        // Only the final newline may go.
        for cut in 0..xml.len() - 1 {
            let prefix = xml.get(..cut).expect("in bounds");
            assert!(
                refuses(prefix),
                "a file cut at byte {cut} of {} was accepted",
                xml.len()
            );
        }
    }
}

#[test]
fn another_message_or_version_is_refused() {
    let report = sample_status_report(EUR).to_xml().expect("written");
    assert!(matches!(
        DeductionFile::from_xml(&report),
        Err(InterchangeError::WrongMessage {
            expected: "urn:iso:std:iso:20022:tech:xsd:pain.008.001.08",
            ..
        })
    ));
    let older = euro_file_xml().replace("pain.008.001.08", "pain.008.001.02");
    assert!(matches!(
        deduction_error(&older),
        InterchangeError::WrongMessage { .. }
    ));
    let no_namespace = euro_file_xml().replace(
        " xmlns=\"urn:iso:std:iso:20022:tech:xsd:pain.008.001.08\"",
        "",
    );
    assert!(matches!(
        deduction_error(&no_namespace),
        InterchangeError::WrongMessage { .. }
    ));
    let notice = sample_notice(EUR).to_xml().expect("written");
    assert!(matches!(
        StatusReport::from_xml(&notice),
        Err(InterchangeError::WrongMessage { .. })
    ));
}

#[test]
fn counts_and_sums_must_agree_with_the_items() {
    let more = euro_file_xml().replace("<NbOfTxs>2</NbOfTxs>", "<NbOfTxs>3</NbOfTxs>");
    assert!(matches!(
        deduction_error(&more),
        InterchangeError::CountMismatch {
            declared: 3,
            actual: 2,
            ..
        }
    ));
    let fewer = euro_file_xml().replace("<NbOfTxs>2</NbOfTxs>", "<NbOfTxs>1</NbOfTxs>");
    assert!(matches!(
        cause(&deduction_error(&fewer)),
        InterchangeError::CountMismatch {
            declared: 1,
            actual: 2,
            ..
        }
    ));
    let sum = euro_file_xml().replace("<CtrlSum>128.45</CtrlSum>", "<CtrlSum>128.46</CtrlSum>");
    assert!(matches!(
        deduction_error(&sum),
        InterchangeError::SumMismatch {
            declared: 12_846,
            actual: 12_845,
            ..
        }
    ));
    let group_only =
        euro_file_xml().replacen("<CtrlSum>128.45</CtrlSum>", "<CtrlSum>1.00</CtrlSum>", 1);
    assert!(matches!(
        deduction_error(&group_only),
        InterchangeError::Mismatch {
            field: "PmtInf/CtrlSum",
            ..
        }
    ));

    let notice = String::from_utf8(sample_notice(EUR).to_xml().expect("written")).expect("UTF-8");
    let total = notice.replace(">193.45<", ">193.46<");
    assert!(matches!(
        TransferNotice::from_xml(total.as_bytes()),
        Err(InterchangeError::SumMismatch {
            declared: 19_346,
            actual: 19_345,
            ..
        })
    ));
    let batch_total = notice.replacen(">193.45<", ">193.46<", 1);
    assert!(matches!(
        TransferNotice::from_xml(batch_total.as_bytes()),
        Err(InterchangeError::Mismatch { .. })
    ));

    let report =
        String::from_utf8(sample_status_report(JPY).to_xml().expect("written")).expect("UTF-8");
    let report_count = report.replace(
        "<OrgnlNbOfTxs>5</OrgnlNbOfTxs>",
        "<OrgnlNbOfTxs>6</OrgnlNbOfTxs>",
    );
    assert!(matches!(
        StatusReport::from_xml(report_count.as_bytes()),
        Err(InterchangeError::CountMismatch { .. })
    ));
}

#[test]
fn duplicate_end_to_end_ids_are_refused() {
    let duplicated = euro_file_xml().replace("<EndToEndId>E2E-2<", "<EndToEndId>E2E-1<");
    let error = deduction_error(&duplicated);
    assert!(
        matches!(&error, InterchangeError::Item { index: 2, .. }),
        "{error}"
    );
    assert!(matches!(cause(&error), InterchangeError::DuplicateEndToEndId(id) if id == "E2E-1"));

    let mut file = sample_deductions(EUR);
    file.deductions[1].end_to_end_id = "E2E-1".to_owned();
    assert!(matches!(
        cause(&file.to_xml().expect_err("refused")),
        InterchangeError::DuplicateEndToEndId(_)
    ));

    let mut notice = sample_notice(EUR);
    notice.entries[1].end_to_end_id = "E2E-1".to_owned();
    assert!(matches!(
        cause(&notice.to_xml().expect_err("refused")),
        InterchangeError::DuplicateEndToEndId(_)
    ));
}

#[test]
fn bad_amounts_are_refused_when_read() {
    let xml = euro_file_xml();
    let cases = [
        ("-123.45", FieldProblem::Negative),
        ("123.456", FieldProblem::TooManyDecimals { allowed: 2 }),
        ("0.00", FieldProblem::Zero),
        ("99999999999999999999", FieldProblem::TooLarge),
        ("1.2e2", FieldProblem::NotAnAmount),
    ];
    for (amount, expected) in cases {
        let bad = xml.replace(">123.45</InstdAmt>", &format!(">{amount}</InstdAmt>"));
        let error = deduction_error(&bad);
        assert_eq!(
            field_problem(&error),
            Some(("DrctDbtTxInf/InstdAmt", expected)),
            "{amount}: {error}"
        );
    }
    let yen = String::from_utf8(sample_deductions(JPY).to_xml().expect("written")).expect("UTF-8");
    let fraction = yen.replace(">12345</InstdAmt>", ">12345.5</InstdAmt>");
    assert_eq!(
        field_problem(&deduction_error(&fraction)),
        Some((
            "DrctDbtTxInf/InstdAmt",
            FieldProblem::TooManyDecimals { allowed: 0 }
        ))
    );
}

#[test]
fn bad_amounts_are_refused_when_written() {
    let zero = deduction_file(EUR, vec![deduction(1, 0, vec![])]);
    assert!(matches!(
        field_problem(&zero.to_xml().expect_err("refused")),
        Some((_, FieldProblem::Zero))
    ));
    let huge = deduction_file(EUR, vec![deduction(1, MAX_AMOUNT + 1, vec![])]);
    assert!(matches!(
        field_problem(&huge.to_xml().expect_err("refused")),
        Some((_, FieldProblem::TooLarge))
    ));
    let overflowing_sum = deduction_file(
        EUR,
        vec![deduction(1, MAX_AMOUNT, vec![]), deduction(2, 1, vec![])],
    );
    assert!(matches!(
        field_problem(&overflowing_sum.to_xml().expect_err("refused")),
        Some(("GrpHdr/CtrlSum", FieldProblem::TooLarge))
    ));
    let mut notice = sample_notice(EUR);
    notice.total += 1;
    assert!(matches!(
        notice.to_xml(),
        Err(InterchangeError::SumMismatch { .. })
    ));
}

#[test]
fn unknown_currencies_are_refused() {
    assert!(
        matches!(deduction_file(999, vec![deduction(1, 1, vec![])]).to_xml(), Err(InterchangeError::UnknownCurrency(code)) if code == "999")
    );
    let unknown = euro_file_xml().replace("EUR", "XTS");
    assert!(
        matches!(deduction_error(&unknown), InterchangeError::UnknownCurrency(code) if code == "XTS")
    );
    let mixed = euro_file_xml().replacen("Ccy=\"EUR\"", "Ccy=\"USD\"", 1);
    assert!(matches!(
        cause(&deduction_error(&mixed)),
        InterchangeError::Mismatch {
            field: "DrctDbtTxInf/InstdAmt",
            ..
        }
    ));
}

#[test]
fn malformed_token_ids_are_refused() {
    let xml = euro_file_xml();
    for bad in [
        "ABABABABABABABABABABABABABABABAB",
        "ababababababababababababababab",
        "zzabababababababababababababababab",
    ] {
        let refused = xml.replace(
            "<Nb>abababababababababababababababab</Nb>",
            &format!("<Nb>{bad}</Nb>"),
        );
        assert_eq!(
            field_problem(&deduction_error(&refused)),
            Some((
                "DrctDbtTxInf/RmtInf/Strd/RfrdDocInf/Nb",
                FieldProblem::NotATokenId
            )),
            "{bad}"
        );
    }
}

#[test]
fn fields_too_long_are_refused_both_ways() {
    let long = "X".repeat(36);
    let refused = euro_file_xml().replace("<EndToEndId>E2E-1<", &format!("<EndToEndId>{long}<"));
    assert_eq!(
        field_problem(&deduction_error(&refused)),
        Some((
            "DrctDbtTxInf/PmtId/EndToEndId",
            FieldProblem::TooLong {
                max: 35,
                actual: 36
            }
        ))
    );
    let mut file = sample_deductions(EUR);
    file.deductions[0].name = "n".repeat(141);
    assert_eq!(
        field_problem(&file.to_xml().expect_err("refused")),
        Some((
            "DrctDbtTxInf/Dbtr/Nm",
            FieldProblem::TooLong {
                max: 140,
                actual: 141
            }
        ))
    );
    let mut file = sample_deductions(EUR);
    file.creditor_account = "a".repeat(35);
    assert!(matches!(
        field_problem(&file.to_xml().expect_err("refused")),
        Some(("PmtInf/CdtrAcct/Id/Othr/Id", _))
    ));
    let mut file = sample_deductions(EUR);
    file.deductions[0].user_id = " padded".to_owned();
    assert!(matches!(
        field_problem(&file.to_xml().expect_err("refused")),
        Some((_, FieldProblem::SurroundingSpace))
    ));
    let mut file = sample_deductions(EUR);
    file.deductions[0].mandate_id = "line\nbreak".to_owned();
    assert!(matches!(
        field_problem(&file.to_xml().expect_err("refused")),
        Some((_, FieldProblem::ControlCharacter))
    ));
}

#[test]
fn the_writer_holds_to_the_count_and_sum_it_promised() {
    let file = sample_deductions(EUR);
    let head = file.head().expect("a head");
    let mut writer = DeductionWriter::new(Vec::new(), &head).expect("head written");
    writer.write(&file.deductions[0]).expect("first written");
    assert!(matches!(
        writer.finish(),
        Err(InterchangeError::CountMismatch {
            declared: 2,
            actual: 1,
            ..
        })
    ));

    let mut writer = DeductionWriter::new(Vec::new(), &head).expect("head written");
    for deduction in &file.deductions {
        writer.write(deduction).expect("written");
    }
    let extra = deduction(3, 1, vec![]);
    assert!(matches!(
        cause(&writer.write(&extra).expect_err("one too many")),
        InterchangeError::CountMismatch { .. }
    ));
    // The refused deduction left the output as it was.
    let xml = writer.finish().expect("still complete");
    assert_eq!(xml, file.to_xml().expect("whole file"));

    let mut wrong_sum = head.clone();
    wrong_sum.control_sum += 1;
    let mut writer = DeductionWriter::new(Vec::new(), &wrong_sum).expect("head written");
    for deduction in &file.deductions {
        writer.write(deduction).expect("written");
    }
    assert!(matches!(
        writer.finish(),
        Err(InterchangeError::SumMismatch { .. })
    ));

    let mut empty = head;
    empty.count = 0;
    assert!(matches!(
        DeductionWriter::new(Vec::new(), &empty),
        Err(InterchangeError::NoItems(_))
    ));
    let mut notice_head = sample_notice(EUR).head();
    notice_head.bank_id = String::new();
    assert!(matches!(
        TransferNoticeWriter::new(Vec::new(), &notice_head),
        Err(InterchangeError::Field {
            problem: FieldProblem::Empty,
            ..
        })
    ));
}

#[test]
fn inconsistent_statuses_are_refused_when_written() {
    let accepted_short = status(1, TransactionStatus::Accepted, None, (100, 10, 10), vec![]);
    let accepted_with_reason = status(
        1,
        TransactionStatus::Accepted,
        Some(ReasonCode::Duplicate),
        (100, 0, 100),
        vec![],
    );
    let partial_without_reason = status(1, TransactionStatus::Partial, None, (100, 0, 50), vec![]);
    let partial_everything = status(
        1,
        TransactionStatus::Partial,
        Some(ReasonCode::InsufficientFunds),
        (100, 0, 100),
        vec![],
    );
    let rejected_collected = status(
        1,
        TransactionStatus::Rejected,
        Some(ReasonCode::NoMandate),
        (100, 1, 0),
        vec![],
    );
    let too_much = status(1, TransactionStatus::Accepted, None, (100, 60, 60), vec![]);
    let drawn_unconfirmed = status(
        1,
        TransactionStatus::Accepted,
        None,
        (100, 100, 0),
        vec![TokenConfirmation {
            token_id: [7; 16],
            confirmed: false,
            drawn: 100,
            remaining: 0,
        }],
    );
    for bad in [
        accepted_short,
        accepted_with_reason,
        partial_without_reason,
        partial_everything,
        rejected_collected,
        too_much,
        drawn_unconfirmed,
    ] {
        let report = status_report(EUR, vec![bad.clone()]);
        let error = report
            .to_xml()
            .expect_err("an inconsistent status is refused");
        assert!(
            matches!(cause(&error), InterchangeError::InconsistentStatus { .. }),
            "{bad:?}: {error}"
        );
    }
}

#[test]
fn inconsistent_statuses_are_refused_when_read() {
    // A partial status whose split was edited to collect everything.
    let xml =
        String::from_utf8(sample_status_report(JPY).to_xml().expect("written")).expect("UTF-8");
    let edited = xml.replace(
        "<FrPrsnlAcct>4000</FrPrsnlAcct>",
        "<FrPrsnlAcct>7000</FrPrsnlAcct>",
    );
    let error = StatusReport::from_xml(edited.as_bytes()).expect_err("refused");
    assert!(
        matches!(&error, InterchangeError::Item { index: 2, .. }),
        "{error}"
    );
    assert!(matches!(
        cause(&error),
        InterchangeError::InconsistentStatus { .. }
    ));
    let unknown = xml.replace("<Cd>AM04</Cd>", "<Cd>XX99</Cd>");
    assert!(matches!(
        field_problem(&StatusReport::from_xml(unknown.as_bytes()).expect_err("refused")),
        Some(("TxInfAndSts/StsRsnInf/Rsn/Cd", FieldProblem::UnknownCode(_)))
    ));
}

#[test]
fn foreign_elements_and_namespaces_are_refused() {
    let xml = euro_file_xml();
    let after = xml.replace("</PmtInf>", "</PmtInf><PmtInf/>");
    assert!(matches!(
        deduction_error(&after),
        InterchangeError::UnexpectedElement {
            context: "after the items",
            ..
        }
    ));
    let among = xml.replacen("<DrctDbtTxInf>", "<Other/><DrctDbtTxInf>", 2);
    assert!(matches!(
        deduction_error(&among),
        InterchangeError::UnexpectedElement {
            context: "among the items",
            ..
        }
    ));
    let foreign = xml.replacen("<MndtId>", "<MndtId xmlns=\"urn:other\">", 1);
    assert!(matches!(
        deduction_error(&foreign),
        InterchangeError::WrongMessage { .. }
    ));
    let text = xml.replacen("<DrctDbtTxInf>", "stray<DrctDbtTxInf>", 1);
    assert!(matches!(
        deduction_error(&text),
        InterchangeError::UnexpectedText { .. }
    ));
    let trailing = format!("{xml}<Document/>");
    assert!(matches!(
        deduction_error(&trailing),
        InterchangeError::UnexpectedElement { .. }
    ));

    let report =
        String::from_utf8(sample_status_report(EUR).to_xml().expect("written")).expect("UTF-8");
    let iso_envelope = report.replace(" xmlns=\"urn:linkcard:xsd:settlement.001\"", "");
    assert!(matches!(
        StatusReport::from_xml(iso_envelope.as_bytes()),
        Err(InterchangeError::WrongMessage {
            expected: "urn:linkcard:xsd:settlement.001",
            ..
        })
    ));
}

#[test]
fn the_reader_stops_after_an_error() {
    let duplicated = euro_file_xml().replace("<EndToEndId>E2E-2<", "<EndToEndId>E2E-1<");
    let mut reader = DeductionReader::new(duplicated.as_bytes()).expect("the head is fine");
    assert!(matches!(reader.next(), Some(Ok(_))));
    assert!(matches!(reader.next(), Some(Err(_))));
    assert!(reader.next().is_none());
}

#[test]
fn mismatched_parties_are_refused() {
    let other_bank = euro_file_xml().replacen(
        "<DbtrAgt><FinInstnId><Othr><Id>BANK-1</Id>",
        "<DbtrAgt><FinInstnId><Othr><Id>BANK-2</Id>",
        1,
    );
    assert!(matches!(
        cause(&deduction_error(&other_bank)),
        InterchangeError::Mismatch {
            field: "DrctDbtTxInf/DbtrAgt/FinInstnId/Othr/Id",
            ..
        }
    ));
    let other_creditor = euro_file_xml().replacen(
        "<Cdtr><Id><OrgId><Othr><Id>CREDIT-CO<",
        "<Cdtr><Id><OrgId><Othr><Id>CREDIT-XX<",
        1,
    );
    assert!(matches!(
        deduction_error(&other_creditor),
        InterchangeError::Mismatch { .. }
    ));
    let method = euro_file_xml().replace("<PmtMtd>DD</PmtMtd>", "<PmtMtd>TRF</PmtMtd>");
    assert!(matches!(
        field_problem(&deduction_error(&method)),
        Some(("PmtInf/PmtMtd", FieldProblem::Unexpected { .. }))
    ));
}

#[test]
fn deep_nesting_and_huge_items_are_refused() {
    let deep = format!(
        "{}x{}",
        "<Ustrd>".repeat(100_000),
        "</Ustrd>".repeat(100_000)
    );
    let nested = euro_file_xml().replacen("<RmtInf>", &format!("<RmtInf>{deep}"), 1);
    assert!(matches!(
        cause(&deduction_error(&nested)),
        InterchangeError::TooDeep {
            element: "DrctDbtTxInf",
            ..
        }
    ));
    let huge = format!("<Ustrd>{}</Ustrd>", "x".repeat(2 * 1024 * 1024));
    let large = euro_file_xml().replacen("<RmtInf>", &format!("<RmtInf>{huge}"), 1);
    assert!(matches!(
        cause(&deduction_error(&large)),
        InterchangeError::ElementTooLarge {
            element: "DrctDbtTxInf",
            ..
        }
    ));
}
