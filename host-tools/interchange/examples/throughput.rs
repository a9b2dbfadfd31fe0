//! How fast a settlement day's files go: writes, signs, verifies and reads back a deduction file, a status report
//! and a transfer notice of N users (default 1,000,000), and prints items/s and the peak resident memory (VmHWM).
//!
//! `cargo run --release -p interchange --example throughput [N]`

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use interchange::{
    Date, Deduction, DeductionFileHead, DeductionStatus, DeductionWriter, Header, NoticeEntry,
    SignedFile, StatusReportHead, StatusReportWriter, TokenConfirmation, TransactionStatus,
    TransferNoticeHead, TransferNoticeWriter, read_signed_deductions, read_signed_status_report,
    read_signed_transfer_notice,
};
use p256::PublicKey;
use p256::ecdsa::SigningKey;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count: u64 = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let key = SigningKey::from_slice(&[0x42; 32])?;
    let public = PublicKey::from(key.verifying_key());
    let directory =
        std::env::temp_dir().join(format!("interchange-throughput-{}", std::process::id()));
    std::fs::create_dir_all(&directory)?;
    println!("{count} users; files in {}", directory.display());

    let path = directory.join("deductions.xml");
    let seconds = timed(|| write_deductions(&path, count, &key))?;
    report("pain.008 write + sign", count, seconds, &path)?;
    let seconds = timed(|| read_deductions(&path, count, &public))?;
    report("pain.008 verify + read", count, seconds, &path)?;

    let path = directory.join("status.xml");
    let seconds = timed(|| write_statuses(&path, count, &key))?;
    report("pain.002 write + sign", count, seconds, &path)?;
    let seconds = timed(|| read_statuses(&path, count, &public))?;
    report("pain.002 verify + read", count, seconds, &path)?;

    let path = directory.join("notice.xml");
    let seconds = timed(|| write_notice(&path, count, &key))?;
    report("camt.054 write + sign", count, seconds, &path)?;
    let seconds = timed(|| read_notice(&path, count, &public))?;
    report("camt.054 verify + read", count, seconds, &path)?;

    std::fs::remove_dir_all(&directory)?;
    Ok(())
}

fn timed(
    work: impl FnOnce() -> Result<(), Box<dyn std::error::Error>>,
) -> Result<f64, Box<dyn std::error::Error>> {
    let start = Instant::now();
    work()?;
    Ok(start.elapsed().as_secs_f64())
}

fn report(
    what: &str,
    count: u64,
    seconds: f64,
    path: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let megabytes = std::fs::metadata(path)?.len() as f64 / 1e6;
    println!(
        "{what:24} {seconds:7.2} s {:>12.0} items/s  {megabytes:8.1} MB  peak RSS so far {}",
        count as f64 / seconds,
        peak_resident_memory()
    );
    Ok(())
}

/// VmHWM from /proc/self/status: the most resident memory the process ever had.
fn peak_resident_memory() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM:"))
                .map(|line| line[6..].trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

fn header(message_id: &str) -> Header {
    Header {
        message_id: message_id.to_owned(),
        created_unix_seconds: 1_767_225_600,
    }
}

fn write_deductions(
    path: &Path,
    count: u64,
    key: &SigningKey,
) -> Result<(), Box<dyn std::error::Error>> {
    let head = DeductionFileHead {
        header: header("DED-2026-01-31"),
        credit_id: "CREDIT-CO".to_owned(),
        bank_id: "BANK-1".to_owned(),
        creditor_account: "CREDIT-ACC".to_owned(),
        collection_date: Date {
            year: 2026,
            month: 1,
            day: 31,
        },
        currency: 392,
        count,
        control_sum: (1..=count).map(amount).sum(),
    };
    let mut writer = DeductionWriter::new(SignedFile::create(path)?, &head)?;
    // One deduction reused: the loop measures the writer, not the test data's allocations.
    let mut deduction = Deduction {
        end_to_end_id: String::new(),
        mandate_id: String::new(),
        user_id: String::new(),
        name: String::new(),
        debtor_account: String::new(),
        amount: 0,
        token_ids: Vec::new(),
    };
    for user in 1..=count {
        refill(
            &mut deduction.end_to_end_id,
            format_args!("DED-2026-01-31-{user:07}"),
        );
        refill(&mut deduction.mandate_id, format_args!("MANDATE-{user:07}"));
        refill(&mut deduction.user_id, format_args!("USER-{user:07}"));
        refill(
            &mut deduction.name,
            format_args!("Cardholder Number {user}"),
        );
        refill(
            &mut deduction.debtor_account,
            format_args!("0012-{user:010}"),
        );
        deduction.amount = amount(user);
        deduction.token_ids.clear();
        if user % 2 == 0 {
            deduction.token_ids.push(u128::from(user).to_be_bytes());
        }
        writer.write(&deduction)?;
    }
    writer.finish()?.commit(key)?;
    Ok(())
}

fn read_deductions(
    path: &Path,
    count: u64,
    public: &PublicKey,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut read = 0u64;
    for deduction in read_signed_deductions(path, public)? {
        read += u64::from(deduction?.amount > 0);
    }
    assert_eq!(read, count);
    Ok(())
}

fn write_statuses(
    path: &Path,
    count: u64,
    key: &SigningKey,
) -> Result<(), Box<dyn std::error::Error>> {
    let head = StatusReportHead {
        header: header("STS-2026-01-31"),
        bank_id: "BANK-1".to_owned(),
        credit_id: "CREDIT-CO".to_owned(),
        original_message_id: "DED-2026-01-31".to_owned(),
        currency: 392,
        count,
        control_sum: (1..=count).map(amount).sum(),
    };
    let mut writer = StatusReportWriter::new(SignedFile::create(path)?, &head)?;
    let mut status = DeductionStatus {
        end_to_end_id: String::new(),
        status: TransactionStatus::Accepted,
        reason: None,
        due: 0,
        from_pool: 0,
        from_personal: 0,
        tokens: Vec::new(),
    };
    for user in 1..=count {
        refill(
            &mut status.end_to_end_id,
            format_args!("DED-2026-01-31-{user:07}"),
        );
        status.due = amount(user);
        status.from_pool = status.due / 3;
        status.from_personal = status.due - status.from_pool;
        status.tokens.clear();
        status.tokens.push(TokenConfirmation {
            token_id: u128::from(user).to_be_bytes(),
            confirmed: true,
            drawn: status.from_pool,
            remaining: 100,
        });
        writer.write(&status)?;
    }
    writer.finish()?.commit(key)?;
    Ok(())
}

fn read_statuses(
    path: &Path,
    count: u64,
    public: &PublicKey,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut read = 0u64;
    for status in read_signed_status_report(path, public)? {
        read += u64::from(status?.due > 0);
    }
    assert_eq!(read, count);
    Ok(())
}

fn write_notice(
    path: &Path,
    count: u64,
    key: &SigningKey,
) -> Result<(), Box<dyn std::error::Error>> {
    let head = TransferNoticeHead {
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
        currency: 392,
        count,
        total: (1..=count).map(amount).sum(),
    };
    let mut writer = TransferNoticeWriter::new(SignedFile::create(path)?, &head)?;
    let mut entry = NoticeEntry {
        end_to_end_id: String::new(),
        amount: 0,
    };
    for user in 1..=count {
        refill(
            &mut entry.end_to_end_id,
            format_args!("DED-2026-01-31-{user:07}"),
        );
        entry.amount = amount(user);
        writer.write(&entry)?;
    }
    writer.finish()?.commit(key)?;
    Ok(())
}

fn read_notice(
    path: &Path,
    count: u64,
    public: &PublicKey,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut read = 0u64;
    for entry in read_signed_transfer_notice(path, public)? {
        read += u64::from(entry?.amount > 0);
    }
    assert_eq!(read, count);
    Ok(())
}

fn amount(user: u64) -> u64 {
    1_000 + user % 50_000
}

fn refill(text: &mut String, value: std::fmt::Arguments<'_>) {
    text.clear();
    let _ = text.write_fmt(value);
}
