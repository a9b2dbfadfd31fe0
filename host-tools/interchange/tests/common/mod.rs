//! Sample files and proptest strategies shared by the integration tests.
#![allow(dead_code)]

use interchange::{
    Date, Deduction, DeductionFile, DeductionStatus, Header, NoticeEntry, ReasonCode, StatusReport,
    TokenConfirmation, TransactionStatus, TransferNotice,
};
use proptest::prelude::*;

pub const JPY: u16 = 392;
pub const EUR: u16 = 978;

pub fn header(message_id: &str) -> Header {
    Header {
        message_id: message_id.to_owned(),
        created_unix_seconds: 1_767_225_600,
    }
}

pub fn deduction(index: u32, amount: u64, token_ids: Vec<[u8; 16]>) -> Deduction {
    Deduction {
        end_to_end_id: format!("E2E-{index}"),
        mandate_id: format!("MANDATE-{index}"),
        user_id: format!("USER-{index}"),
        name: format!("Ada Lovelace & <Co> {index}"),
        debtor_account: format!("ACC-{index}"),
        amount,
        token_ids,
    }
}

pub fn deduction_file(currency: u16, deductions: Vec<Deduction>) -> DeductionFile {
    DeductionFile {
        header: header("DED-2026-01-31"),
        credit_id: "CREDIT-CO".to_owned(),
        bank_id: "BANK-1".to_owned(),
        creditor_account: "CREDIT-ACC".to_owned(),
        collection_date: Date {
            year: 2026,
            month: 1,
            day: 31,
        },
        currency,
        deductions,
    }
}

/// A small file: one deduction with two tokens, one without.
pub fn sample_deductions(currency: u16) -> DeductionFile {
    deduction_file(
        currency,
        vec![
            deduction(1, 12_345, vec![[0xab; 16], [0x01; 16]]),
            deduction(2, 500, vec![]),
        ],
    )
}

pub fn status(
    index: u32,
    status: TransactionStatus,
    reason: Option<ReasonCode>,
    (due, from_pool, from_personal): (u64, u64, u64),
    tokens: Vec<TokenConfirmation>,
) -> DeductionStatus {
    DeductionStatus {
        end_to_end_id: format!("E2E-{index}"),
        status,
        reason,
        due,
        from_pool,
        from_personal,
        tokens,
    }
}

pub fn status_report(currency: u16, statuses: Vec<DeductionStatus>) -> StatusReport {
    StatusReport {
        header: header("STS-2026-01-31"),
        bank_id: "BANK-1".to_owned(),
        credit_id: "CREDIT-CO".to_owned(),
        original_message_id: "DED-2026-01-31".to_owned(),
        currency,
        statuses,
    }
}

/// Accepted (pool and personal), partial (insufficient funds, a confirmed and an unconfirmed token), rejected.
pub fn sample_status_report(currency: u16) -> StatusReport {
    let confirmed = TokenConfirmation {
        token_id: [0xab; 16],
        confirmed: true,
        drawn: 3_000,
        remaining: 1_000,
    };
    let unconfirmed = TokenConfirmation {
        token_id: [0x01; 16],
        confirmed: false,
        drawn: 0,
        remaining: 0,
    };
    status_report(
        currency,
        vec![
            status(
                1,
                TransactionStatus::Accepted,
                None,
                (12_345, 2_000, 10_345),
                vec![],
            ),
            status(
                2,
                TransactionStatus::Partial,
                Some(ReasonCode::InsufficientFunds),
                (10_000, 3_000, 4_000),
                vec![confirmed, unconfirmed],
            ),
            status(
                3,
                TransactionStatus::Rejected,
                Some(ReasonCode::IncorrectAccount),
                (500, 0, 0),
                vec![],
            ),
            status(
                4,
                TransactionStatus::Rejected,
                Some(ReasonCode::NoMandate),
                (700, 0, 0),
                vec![unconfirmed],
            ),
            status(
                5,
                TransactionStatus::Rejected,
                Some(ReasonCode::Duplicate),
                (900, 0, 0),
                vec![],
            ),
        ],
    )
}

pub fn transfer_notice(currency: u16, entries: Vec<NoticeEntry>) -> TransferNotice {
    TransferNotice {
        header: header("NTC-2026-01-31"),
        bank_id: "BANK-1".to_owned(),
        credit_id: "CREDIT-CO".to_owned(),
        original_message_id: "DED-2026-01-31".to_owned(),
        account: "CREDIT-ACC".to_owned(),
        booking_date: Date {
            year: 2026,
            month: 1,
            day: 31,
        },
        currency,
        total: entries.iter().map(|entry| entry.amount).sum(),
        entries,
    }
}

pub fn sample_notice(currency: u16) -> TransferNotice {
    transfer_notice(
        currency,
        vec![
            NoticeEntry {
                end_to_end_id: "E2E-1".to_owned(),
                amount: 12_345,
            },
            NoticeEntry {
                end_to_end_id: "E2E-2".to_owned(),
                amount: 7_000,
            },
        ],
    )
}

// --- Strategies ----------------------------------------------------------------------------------------------------

/// Text the files carry: markup characters, non-ASCII, inner spaces; never a leading or trailing space.
pub fn text(max_chars: usize) -> impl Strategy<Value = String> {
    let inner = max_chars.saturating_sub(2);
    let edge = "[A-Za-z0-9&<>\"'é日本ß-]";
    proptest::string::string_regex(&format!(
        "{edge}([A-Za-z0-9 &<>\"'é日本ß.-]{{0,{inner}}}{edge})?"
    ))
    .expect("a valid regex")
}

pub fn currency() -> impl Strategy<Value = u16> {
    prop_oneof![Just(392u16), Just(978), Just(840), Just(826), Just(756)]
}

pub fn date() -> impl Strategy<Value = Date> {
    (1u16..=9999, 1u8..=12, 1u8..=28).prop_map(|(year, month, day)| Date { year, month, day })
}

pub fn header_strategy() -> impl Strategy<Value = Header> {
    (text(35), 0u64..=253_402_300_799).prop_map(|(message_id, created_unix_seconds)| Header {
        message_id,
        created_unix_seconds,
    })
}

/// End-to-end ids made unique by their position.
fn unique_id(index: usize, id: &str) -> String {
    let mut unique = format!("{index}.");
    unique.extend(id.chars().take(35 - unique.len()));
    unique.trim_end().to_owned()
}

pub fn deduction_strategy() -> impl Strategy<Value = Deduction> {
    (
        text(30),
        text(35),
        text(35),
        text(140),
        text(34),
        1u64..=1_000_000_000_000,
        prop::collection::vec(any::<[u8; 16]>(), 0..4),
    )
        .prop_map(
            |(end_to_end_id, mandate_id, user_id, name, debtor_account, amount, token_ids)| {
                Deduction {
                    end_to_end_id,
                    mandate_id,
                    user_id,
                    name,
                    debtor_account,
                    amount,
                    token_ids,
                }
            },
        )
}

pub fn deduction_file_strategy() -> impl Strategy<Value = DeductionFile> {
    (
        header_strategy(),
        text(35),
        text(35),
        text(34),
        date(),
        currency(),
        prop::collection::vec(deduction_strategy(), 1..6),
    )
        .prop_map(
            |(
                header,
                credit_id,
                bank_id,
                creditor_account,
                collection_date,
                currency,
                mut deductions,
            )| {
                for (index, deduction) in deductions.iter_mut().enumerate() {
                    deduction.end_to_end_id = unique_id(index, &deduction.end_to_end_id);
                }
                DeductionFile {
                    header,
                    credit_id,
                    bank_id,
                    creditor_account,
                    collection_date,
                    currency,
                    deductions,
                }
            },
        )
}

fn token_strategy() -> impl Strategy<Value = TokenConfirmation> {
    (
        any::<[u8; 16]>(),
        any::<bool>(),
        0u64..=1_000_000,
        0u64..=1_000_000,
    )
        .prop_map(
            |(token_id, confirmed, drawn, remaining)| TokenConfirmation {
                token_id,
                confirmed,
                drawn: if confirmed { drawn } else { 0 },
                remaining,
            },
        )
}

/// A status consistent with its split: accepted collects `due`, partial some of it, rejected none.
pub fn status_strategy() -> impl Strategy<Value = DeductionStatus> {
    let reason = prop_oneof![
        Just(ReasonCode::InsufficientFunds),
        Just(ReasonCode::IncorrectAccount),
        Just(ReasonCode::NoMandate),
        Just(ReasonCode::Duplicate),
    ];
    (
        text(30),
        2u64..=1_000_000_000_000,
        0u8..3,
        any::<u64>(),
        any::<u64>(),
        reason,
        prop::collection::vec(token_strategy(), 0..3),
    )
        .prop_map(
            |(end_to_end_id, due, kind, first, second, reason, tokens)| {
                let (status, reason, collected) = match kind {
                    0 => (TransactionStatus::Accepted, None, due),
                    1 => (
                        TransactionStatus::Partial,
                        Some(reason),
                        1 + first % (due - 1),
                    ),
                    _ => (TransactionStatus::Rejected, Some(reason), 0),
                };
                let from_pool = second % (collected + 1);
                DeductionStatus {
                    end_to_end_id,
                    status,
                    reason,
                    due,
                    from_pool,
                    from_personal: collected - from_pool,
                    tokens,
                }
            },
        )
}

pub fn status_report_strategy() -> impl Strategy<Value = StatusReport> {
    (
        header_strategy(),
        text(35),
        text(35),
        text(35),
        currency(),
        prop::collection::vec(status_strategy(), 1..6),
    )
        .prop_map(
            |(header, bank_id, credit_id, original_message_id, currency, mut statuses)| {
                for (index, status) in statuses.iter_mut().enumerate() {
                    status.end_to_end_id = unique_id(index, &status.end_to_end_id);
                }
                StatusReport {
                    header,
                    bank_id,
                    credit_id,
                    original_message_id,
                    currency,
                    statuses,
                }
            },
        )
}

pub fn notice_strategy() -> impl Strategy<Value = TransferNotice> {
    let entry =
        (text(30), 1u64..=1_000_000_000_000).prop_map(|(end_to_end_id, amount)| NoticeEntry {
            end_to_end_id,
            amount,
        });
    (
        header_strategy(),
        text(35),
        text(35),
        text(35),
        text(34),
        date(),
        currency(),
        prop::collection::vec(entry, 1..6),
    )
        .prop_map(
            |(
                header,
                bank_id,
                credit_id,
                original_message_id,
                account,
                booking_date,
                currency,
                mut entries,
            )| {
                for (index, entry) in entries.iter_mut().enumerate() {
                    entry.end_to_end_id = unique_id(index, &entry.end_to_end_id);
                }
                let total = entries.iter().map(|entry| entry.amount).sum();
                TransferNotice {
                    header,
                    bank_id,
                    credit_id,
                    original_message_id,
                    account,
                    booking_date,
                    currency,
                    total,
                    entries,
                }
            },
        )
}
