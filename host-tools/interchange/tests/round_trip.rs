//! What is written is read back exactly, whole or streamed, for every message.

mod common;

use common::*;
use interchange::{
    DeductionBody, DeductionFile, DeductionReader, DeductionWriter, StatusReport,
    StatusReportReader, StatusReportWriter, TransferNotice, TransferNoticeBody,
    TransferNoticeReader, TransferNoticeWriter,
};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_body_written_before_its_head_makes_the_same_file(file in deduction_file_strategy()) {
        let head = file.head().expect("a head");
        let mut body = DeductionBody::new(&head.bank_id, head.currency).expect("a body");
        for deduction in &file.deductions {
            body.write(deduction).expect("deduction written");
        }
        prop_assert_eq!(body.count(), head.count);
        let xml = DeductionWriter::with_body(Vec::new(), &head, body).expect("file written");
        prop_assert_eq!(xml, file.to_xml().expect("a valid file is written"));
    }

    #[test]
    fn a_notice_body_written_before_its_head_makes_the_same_notice(notice in notice_strategy()) {
        let head = notice.head();
        let mut body = TransferNoticeBody::new(head.currency).expect("a body");
        for entry in &notice.entries {
            body.write(entry).expect("entry written");
        }
        prop_assert_eq!(body.count(), head.count);
        let xml = TransferNoticeWriter::with_body(Vec::new(), &head, body).expect("notice written");
        prop_assert_eq!(xml, notice.to_xml().expect("a valid notice is written"));
    }

    #[test]
    fn deduction_files_round_trip(file in deduction_file_strategy()) {
        let xml = file.to_xml().expect("a valid file is written");
        prop_assert_eq!(DeductionFile::from_xml(&xml).expect("what was written is read"), file);
    }

    #[test]
    fn status_reports_round_trip(report in status_report_strategy()) {
        let xml = report.to_xml().expect("a valid report is written");
        prop_assert_eq!(StatusReport::from_xml(&xml).expect("what was written is read"), report);
    }

    #[test]
    fn transfer_notices_round_trip(notice in notice_strategy()) {
        let xml = notice.to_xml().expect("a valid notice is written");
        prop_assert_eq!(TransferNotice::from_xml(&xml).expect("what was written is read"), notice);
    }
}

#[test]
fn the_streaming_deduction_writer_and_reader_agree_with_the_whole_file() {
    let file = sample_deductions(EUR);
    let head = file.head().expect("a head");
    let mut writer = DeductionWriter::new(Vec::new(), &head).expect("head written");
    for deduction in &file.deductions {
        writer.write(deduction).expect("deduction written");
    }
    let streamed = writer.finish().expect("count and sum as promised");
    assert_eq!(streamed, file.to_xml().expect("whole file"));

    let mut reader = DeductionReader::new(streamed.as_slice()).expect("head read");
    assert_eq!(reader.head(), &head);
    assert_eq!(head.count, 2);
    assert_eq!(head.control_sum, 12_845);
    let read: Vec<_> = reader
        .by_ref()
        .collect::<Result<_, _>>()
        .expect("deductions read");
    assert_eq!(read, file.deductions);
    assert!(reader.next().is_none(), "the iterator stays finished");
}

#[test]
fn the_streaming_status_writer_and_reader_agree_with_the_whole_report() {
    let report = sample_status_report(JPY);
    let head = report.head().expect("a head");
    let mut writer = StatusReportWriter::new(Vec::new(), &head).expect("head written");
    for status in &report.statuses {
        writer.write(status).expect("status written");
    }
    let streamed = writer.finish().expect("count and sum as promised");
    assert_eq!(streamed, report.to_xml().expect("whole report"));
    let mut reader = StatusReportReader::new(streamed.as_slice()).expect("head read");
    assert_eq!(reader.head(), &head);
    assert_eq!(
        reader.head().currency,
        JPY,
        "the currency comes from the first status"
    );
    let read: Vec<_> = reader
        .by_ref()
        .collect::<Result<_, _>>()
        .expect("statuses read");
    assert_eq!(read, report.statuses);
}

#[test]
fn the_streaming_notice_writer_and_reader_agree_with_the_whole_notice() {
    let notice = sample_notice(EUR);
    let head = notice.head();
    let mut writer = TransferNoticeWriter::new(Vec::new(), &head).expect("head written");
    for entry in &notice.entries {
        writer.write(entry).expect("entry written");
    }
    let streamed = writer.finish().expect("count and total as promised");
    assert_eq!(streamed, notice.to_xml().expect("whole notice"));
    let mut reader = TransferNoticeReader::new(streamed.as_slice()).expect("head read");
    assert_eq!(reader.head(), &head);
    let read: Vec<_> = reader
        .by_ref()
        .collect::<Result<_, _>>()
        .expect("entries read");
    assert_eq!(read, notice.entries);
}

#[test]
fn amounts_carry_the_currency_decimals() {
    let yen = String::from_utf8(sample_deductions(JPY).to_xml().expect("written")).expect("UTF-8");
    assert!(
        yen.contains(r#"<InstdAmt Ccy="JPY">12345</InstdAmt>"#),
        "{yen}"
    );
    assert!(yen.contains("<CtrlSum>12845</CtrlSum>"), "{yen}");
    let euro = String::from_utf8(sample_deductions(EUR).to_xml().expect("written")).expect("UTF-8");
    assert!(
        euro.contains(r#"<InstdAmt Ccy="EUR">123.45</InstdAmt>"#),
        "{euro}"
    );
    assert!(
        euro.contains(r#"<InstdAmt Ccy="EUR">5.00</InstdAmt>"#),
        "{euro}"
    );
    assert!(euro.contains("<CtrlSum>128.45</CtrlSum>"), "{euro}");
}

#[test]
fn token_ids_travel_as_structured_remittance_references() {
    let xml = String::from_utf8(sample_deductions(EUR).to_xml().expect("written")).expect("UTF-8");
    let reference = "<RfrdDocInf><Tp><CdOrPrtry><Prtry>LCTOKEN</Prtry></CdOrPrtry></Tp>\
                     <Nb>abababababababababababababababab</Nb></RfrdDocInf>";
    assert!(xml.contains(&format!("<RmtInf><Strd>{reference}")), "{xml}");
    assert_eq!(
        xml.matches("<RmtInf>").count(),
        1,
        "no remittance information without tokens"
    );
}

#[test]
fn the_reader_accepts_what_another_producer_may_write() {
    // Prefixed elements, indentation, comments, one token per `Strd`, other referred documents, an offset time.
    let xml = r#"<?xml version="1.0" encoding="utf-8"?>
<!-- made elsewhere -->
<p:Document xmlns:p="urn:iso:std:iso:20022:tech:xsd:pain.008.001.08">
  <p:CstmrDrctDbtInitn>
    <p:GrpHdr><p:MsgId>M1</p:MsgId><p:CreDtTm>2026-01-01T09:00:00+09:00</p:CreDtTm><p:NbOfTxs>1</p:NbOfTxs>
      <p:CtrlSum>1.5</p:CtrlSum><p:InitgPty><p:Id><p:OrgId><p:Othr><p:Id>C</p:Id></p:Othr></p:OrgId></p:Id></p:InitgPty>
    </p:GrpHdr>
    <p:PmtInf><p:PmtInfId>P1</p:PmtInfId><p:PmtMtd>DD</p:PmtMtd><p:ReqdColltnDt>2026-01-31</p:ReqdColltnDt>
      <p:Cdtr><p:Nm>Credit</p:Nm><p:Id><p:OrgId><p:Othr><p:Id>C</p:Id></p:Othr></p:OrgId></p:Id></p:Cdtr>
      <p:CdtrAcct><p:Id><p:Othr><p:Id>A</p:Id></p:Othr></p:Id><p:Ccy>EUR</p:Ccy></p:CdtrAcct>
      <p:CdtrAgt><p:FinInstnId><p:Othr><p:Id>B</p:Id></p:Othr></p:FinInstnId></p:CdtrAgt>
      <p:DrctDbtTxInf>
        <p:PmtId><p:InstrId>I1</p:InstrId><p:EndToEndId>E1</p:EndToEndId></p:PmtId>
        <p:InstdAmt Ccy="EUR">1.50</p:InstdAmt>
        <p:DrctDbtTx><p:MndtRltdInf><p:MndtId>MD</p:MndtId></p:MndtRltdInf></p:DrctDbtTx>
        <p:DbtrAgt><p:FinInstnId><p:Othr><p:Id>B</p:Id></p:Othr></p:FinInstnId></p:DbtrAgt>
        <p:Dbtr><p:Nm>Ada &amp; Co</p:Nm><p:Id><p:PrvtId><p:Othr><p:Id>U</p:Id></p:Othr></p:PrvtId></p:Id></p:Dbtr>
        <p:DbtrAcct><p:Id><p:Othr><p:Id>D</p:Id></p:Othr></p:Id></p:DbtrAcct>
        <p:RmtInf>
          <p:Ustrd>thanks</p:Ustrd>
          <p:Strd><p:RfrdDocInf><p:Tp><p:CdOrPrtry><p:Cd>CINV</p:Cd></p:CdOrPrtry></p:Tp><p:Nb>INV-9</p:Nb></p:RfrdDocInf></p:Strd>
          <p:Strd><p:RfrdDocInf><p:Tp><p:CdOrPrtry><p:Prtry>LCTOKEN</p:Prtry></p:CdOrPrtry></p:Tp><p:Nb>000102030405060708090a0b0c0d0e0f</p:Nb></p:RfrdDocInf></p:Strd>
        </p:RmtInf>
      </p:DrctDbtTxInf>
    </p:PmtInf>
  </p:CstmrDrctDbtInitn>
</p:Document>
"#;
    let file = DeductionFile::from_xml(xml.as_bytes()).expect("a valid file from another producer");
    assert_eq!(file.header.created_unix_seconds, 1_767_225_600);
    assert_eq!(file.credit_id, "C");
    let deduction = file.deductions.first().expect("one deduction");
    assert_eq!(deduction.name, "Ada & Co");
    assert_eq!(deduction.amount, 150);
    assert_eq!(
        deduction.token_ids,
        vec![[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]]
    );
}

#[test]
fn a_byte_order_mark_is_accepted() {
    let mut xml = vec![0xEF, 0xBB, 0xBF];
    xml.extend(sample_notice(EUR).to_xml().expect("written"));
    assert_eq!(
        TransferNotice::from_xml(&xml).expect("read"),
        sample_notice(EUR)
    );
}

#[test]
fn a_body_that_is_not_what_its_head_declares_is_refused() {
    let file = sample_deductions(EUR);
    let head = file.head().expect("a head");
    let body_of = |bank: &str, currency: u16, skip: usize| {
        let mut body = DeductionBody::new(bank, currency).expect("a body");
        for deduction in file.deductions.iter().skip(skip) {
            body.write(deduction).expect("deduction written");
        }
        body
    };
    let wrong_bank = body_of("BANK0009", head.currency, 0);
    let one_short = body_of(&head.bank_id, head.currency, 1);
    let other_currency = body_of(&head.bank_id, JPY, 0);
    for body in [wrong_bank, one_short, other_currency] {
        assert!(DeductionWriter::with_body(Vec::new(), &head, body).is_err());
    }
    let mut twice = body_of(&head.bank_id, head.currency, 0);
    assert!(
        twice.write(&file.deductions[0]).is_err(),
        "an end-to-end id twice"
    );
}

#[test]
fn a_notice_body_that_is_not_what_its_head_declares_is_refused() {
    let notice = sample_notice(EUR);
    let head = notice.head();
    let body_of = |currency: u16, skip: usize| {
        let mut body = TransferNoticeBody::new(currency).expect("a body");
        for entry in notice.entries.iter().skip(skip) {
            body.write(entry).expect("entry written");
        }
        body
    };
    for body in [body_of(head.currency, 1), body_of(JPY, 0)] {
        assert!(TransferNoticeWriter::with_body(Vec::new(), &head, body).is_err());
    }
    let mut twice = body_of(head.currency, 0);
    assert!(
        twice.write(&notice.entries[0]).is_err(),
        "an end-to-end id twice"
    );
}

#[test]
fn comments_instructions_and_character_data_inside_items_are_read_through() {
    let notice = sample_notice(EUR);
    let xml = String::from_utf8(notice.to_xml().expect("written")).expect("UTF-8");
    assert_eq!(xml.matches("<TxDtls>").count(), 2);
    let decorated = xml
        .replace("<TxDtls>", "<TxDtls><!-- a < b > c --><?note x?>")
        .replace("<EndToEndId>E2E-", "<EndToEndId><![CDATA[E2E-]]>")
        .replace("</TxDtls>", "<!-- </TxDtls> --></TxDtls>");
    let read = TransferNotice::from_xml(decorated.as_bytes()).expect("read");
    assert_eq!(read, notice);
}
