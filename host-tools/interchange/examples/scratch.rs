use interchange::*;
fn main() {
    let which = std::env::args().nth(1).unwrap();
    let xml = if which == "002" {
        let r = StatusReport {
            header: Header { message_id: "STS-1".into(), created_unix_seconds: 1_767_225_600 },
            bank_id: "BANK".into(), credit_id: "CREDIT".into(), original_message_id: "MSG-1".into(), currency: 392,
            statuses: vec![
                DeductionStatus { end_to_end_id: "E1".into(), status: TransactionStatus::Partial, reason: Some(ReasonCode::InsufficientFunds), due: 1000, from_pool: 300, from_personal: 200,
                  tokens: vec![TokenConfirmation { token_id: [0xab;16], confirmed: true, drawn: 300, remaining: 0 }, TokenConfirmation { token_id: [1;16], confirmed: false, drawn: 0, remaining: 0 }] },
                DeductionStatus { end_to_end_id: "E2".into(), status: TransactionStatus::Accepted, reason: None, due: 5, from_pool: 0, from_personal: 5, tokens: vec![] },
                DeductionStatus { end_to_end_id: "E3".into(), status: TransactionStatus::Rejected, reason: Some(ReasonCode::IncorrectAccount), due: 7, from_pool: 0, from_personal: 0, tokens: vec![] },
            ],
        };
        let x = r.to_xml().unwrap();
        eprintln!("{:?}", StatusReport::from_xml(&x).map(|b| b == r));
        x
    } else {
        let n = TransferNotice {
            header: Header { message_id: "NTC-1".into(), created_unix_seconds: 1_767_225_600 },
            bank_id: "BANK".into(), credit_id: "CREDIT".into(), original_message_id: "MSG-1".into(), account: "ACC-1".into(),
            booking_date: Date { year: 2026, month: 1, day: 31 }, currency: 978, total: 1205,
            entries: vec![NoticeEntry { end_to_end_id: "E1".into(), amount: 1200 }, NoticeEntry { end_to_end_id: "E2".into(), amount: 5 }],
        };
        let x = n.to_xml().unwrap();
        eprintln!("{:?}", TransferNotice::from_xml(&x).map(|b| b == n));
        x
    };
    print!("{}", String::from_utf8_lossy(&xml));
}
