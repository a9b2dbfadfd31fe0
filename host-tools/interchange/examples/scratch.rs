use interchange::*;
fn main() {
    let file = DeductionFile {
        header: Header { message_id: "MSG-1".into(), created_unix_seconds: 1_767_225_600 },
        credit_id: "CREDIT".into(), bank_id: "BANK".into(), creditor_account: "ACC-1".into(),
        collection_date: Date { year: 2026, month: 1, day: 31 }, currency: 978,
        deductions: vec![
            Deduction { end_to_end_id: "E1".into(), mandate_id: "M1".into(), user_id: "U1".into(), name: "Ada & <Lovelace>".into(), debtor_account: "D1".into(), amount: 1234, token_ids: vec![[0xab; 16], [1; 16]] },
            Deduction { end_to_end_id: "E2".into(), mandate_id: "M2".into(), user_id: "U2".into(), name: "Bob".into(), debtor_account: "D2".into(), amount: 5, token_ids: vec![] },
        ],
    };
    let xml = file.to_xml().unwrap();
    print!("{}", String::from_utf8_lossy(&xml));
    let back = DeductionFile::from_xml(&xml);
    println!("{:?}", back.as_ref().map(|b| b == &file));
    if let Err(e) = back { println!("{e}"); let mut s: &dyn std::error::Error = &e; while let Some(x) = s.source() { println!("  {x}"); s = x; } }
}
