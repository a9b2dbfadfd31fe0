//! The demo's settlement day (patent Fig. 8, 11): the credit company's statement, the bank's withdrawals and
//! transfer, the credit company's reconciliation, told with everyone's balances. The organisations meet only
//! through the signed ISO 20022 files in `settlement/`, each checked against the sender's identity key from the
//! contract before it is read.

use std::path::Path;

use anyhow::Context;
use bank::SettlementOrder;
use credit::{ReconciliationOrder, StatementOrder};
use interchange::{
    Deduction, DeductionFile, DeductionStatus, Header, NoticeEntry, StatusReport,
    TransactionStatus, TransferNotice,
};
use serde_json::json;

use super::{BANK_ID, CREDIT_ID, HANAKO, JIRO, PEOPLE, Story, TARO, YEN, short, text};
use crate::money;
use crate::report::now;
use crate::settlement::{derived_message_id, iso_date};

/// Deductions per durable commit (the demo's few users fit in one; big files run in many).
const CHUNK: usize = 1_000;

/// Runs settlement day; whether it turned out as the patent says (Hanako paid from her pool deposit, Taro from
/// his personal account, Jiro short, and only Jiro's reflection flagged).
pub(super) fn settlement_day(story: &mut Story, dir: &Path) -> anyhow::Result<bool> {
    let files = dir.join("settlement");
    std::fs::create_dir_all(&files)
        .with_context(|| format!("cannot create {}", files.display()))?;
    let message_id = format!("ST-{}-{}", text(CREDIT_ID), story.today);
    let deduction_file = statement(story, &message_id, &files)?;
    let (deductions, statuses, report, notice) = settle(story, &deduction_file, &files)?;
    let flagged = reconcile(story, &report, &notice)?;
    let by_user = |who: usize| {
        deductions
            .iter()
            .position(|d| d.user_id == PEOPLE[who].user)
            .and_then(|index| statuses.get(index))
    };
    let hanako = by_user(HANAKO)
        .is_some_and(|s| s.status == TransactionStatus::Accepted && s.from_pool == super::DEPOSIT);
    let taro =
        by_user(TARO).is_some_and(|s| s.status == TransactionStatus::Accepted && s.from_pool == 0);
    let jiro = by_user(JIRO).is_some_and(|s| s.status == TransactionStatus::Partial);
    let only_jiro_flagged =
        flagged.len() == 1 && flagged[0].cardholder_id == PEOPLE[JIRO].cardholder;
    Ok(hanako && taro && jiro && only_jiro_flagged)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(String::new, |name| name.to_string_lossy().into_owned())
}

/// Step 1101: the deduction data, one line per cardholder who owes something, written and signed.
fn statement(
    story: &mut Story,
    message_id: &str,
    files: &Path,
) -> anyhow::Result<std::path::PathBuf> {
    let order = StatementOrder {
        message_id: message_id.to_owned(),
        bank_id: BANK_ID.to_vec(),
        collection_date: story.today,
    };
    let mut run = story.credit.begin_statement(&order, now())?;
    run.collect_all(CHUNK, |_, _| Ok::<_, credit::CreditError>(()))?;
    let summary = run.finish()?;
    let mut deductions = Vec::new();
    loop {
        let after = deductions
            .last()
            .map_or(String::new(), |d: &Deduction| d.end_to_end_id.clone());
        let page = story.credit.statement_items(message_id, &after, CHUNK)?;
        if page.is_empty() {
            break;
        }
        deductions.extend(page);
    }
    let lines: Vec<String> = deductions
        .iter()
        .map(|d| {
            format!(
                "{} {} (asks to confirm {} token(s))",
                name_of(&d.user_id),
                money::format(d.amount, YEN),
                d.token_ids.len()
            )
        })
        .collect();
    let file = DeductionFile {
        header: Header {
            message_id: message_id.to_owned(),
            created_unix_seconds: summary.created_unix_seconds,
        },
        credit_id: text(CREDIT_ID),
        bank_id: text(BANK_ID),
        creditor_account: text(CREDIT_ID),
        collection_date: iso_date(summary.collection_date)?,
        currency: YEN,
        deductions,
    };
    let path = files.join(format!("{message_id}.xml"));
    interchange::write_signed(
        &path,
        &file.to_xml()?,
        story.credit_keys.organisation().identity(),
    )?;
    story.say(
        "statement",
        &format!(
            "Settlement day. {}'s deduction data for {} (step 1101, {} with its signature): {} due from {} cardholders: {}",
            text(CREDIT_ID),
            text(BANK_ID),
            file_name(&path),
            money::format(summary.total, YEN),
            summary.items,
            lines.join("; ")
        ),
        json!({"message_id": message_id, "items": summary.items, "total": summary.total, "tokens": summary.tokens,
               "file": path.display().to_string()}),
    );
    Ok(path)
}

/// What the bank answers: the deductions read from the file, their statuses, and the two files it wrote.
type Answer = (
    Vec<Deduction>,
    Vec<DeductionStatus>,
    std::path::PathBuf,
    std::path::PathBuf,
);

/// Steps 802-805: the file checked and read, each due sum from the pool first, then the personal account; the
/// batch transfer; the status report and the transfer notice written and signed.
fn settle(story: &mut Story, file: &Path, files: &Path) -> anyhow::Result<Answer> {
    let contract = story.bank_keys.load_contract(CREDIT_ID, story.today)?;
    let mut reader = interchange::read_signed_deductions(file, contract.credit_identity())?;
    let head = reader.head().clone();
    let deductions = reader.by_ref().collect::<Result<Vec<_>, _>>()?;
    let order = SettlementOrder {
        message_id: head.header.message_id.clone(),
        credit_id: head.credit_id.as_bytes().to_vec(),
        collection_date: story.today,
        currency: head.currency,
    };
    let mut run = story.bank.begin_settlement(&order, now())?;
    let mut statuses = Vec::with_capacity(deductions.len());
    for chunk in deductions.chunks(CHUNK) {
        statuses.extend(run.settle(chunk)?);
    }
    let summary = run.finish()?;
    let identity = story.bank_keys.organisation().identity().clone();
    let header = |prefix: &str| Header {
        message_id: derived_message_id(prefix, &head.header.message_id),
        created_unix_seconds: summary.started_unix_seconds,
    };
    let report = StatusReport {
        header: header("RP"),
        bank_id: head.bank_id.clone(),
        credit_id: head.credit_id.clone(),
        original_message_id: head.header.message_id.clone(),
        currency: head.currency,
        statuses: statuses.clone(),
    };
    let report_path = files.join(format!("{}.xml", report.header.message_id));
    interchange::write_signed(&report_path, &report.to_xml()?, &identity)?;
    let entries: Vec<NoticeEntry> = statuses
        .iter()
        .filter(|s| s.from_pool + s.from_personal > 0)
        .map(|s| NoticeEntry {
            end_to_end_id: s.end_to_end_id.clone(),
            amount: s.from_pool + s.from_personal,
        })
        .collect();
    let notice = TransferNotice {
        header: header("NT"),
        bank_id: head.bank_id.clone(),
        credit_id: head.credit_id.clone(),
        original_message_id: head.header.message_id.clone(),
        account: head.creditor_account.clone(),
        booking_date: head.collection_date,
        currency: head.currency,
        total: summary.collected(),
        entries,
    };
    let notice_path = files.join(format!("{}.xml", notice.header.message_id));
    interchange::write_signed(&notice_path, &notice.to_xml()?, &identity)?;
    let lines: Vec<String> = deductions
        .iter()
        .zip(&statuses)
        .map(|(deduction, status)| describe_status(deduction, status))
        .collect();
    story.say(
        "settlement",
        &format!(
            "{} checks the file's signature and settles (Fig. 8): {}. It transferred {} to {} ({} from pools, {} from personal accounts, {} short) and answered with {} and {}",
            text(BANK_ID),
            lines.join("; "),
            money::format(summary.collected(), YEN),
            text(CREDIT_ID),
            money::format(summary.from_pool, YEN),
            money::format(summary.from_personal, YEN),
            money::format(summary.shortfall, YEN),
            file_name(&report_path),
            file_name(&notice_path),
        ),
        json!({"collected": summary.collected(), "from_pool": summary.from_pool,
               "from_personal": summary.from_personal, "shortfall": summary.shortfall,
               "accepted": summary.accepted, "partial": summary.partial, "rejected": summary.rejected,
               "unconfirmed_tokens": summary.unconfirmed_tokens,
               "report": report_path.display().to_string(), "notice": notice_path.display().to_string()}),
    );
    Ok((deductions, statuses, report_path, notice_path))
}

fn describe_status(deduction: &Deduction, status: &DeductionStatus) -> String {
    let verdict = match status.status {
        TransactionStatus::Accepted => "accepted",
        TransactionStatus::Partial => "PARTLY collected (AM04: insufficient funds)",
        TransactionStatus::Rejected => "REJECTED",
    };
    let mut line = format!(
        "{} {} due, {} from the pool and {} from the personal account, {verdict}",
        name_of(&deduction.user_id),
        money::format(status.due, YEN),
        money::format(status.from_pool, YEN),
        money::format(status.from_personal, YEN),
    );
    for token in &status.tokens {
        if !token.confirmed {
            line += &format!(
                "; token {} NOT confirmed: no deposit backs it",
                short(&hex::encode(token.token_id))
            );
        }
    }
    line
}

/// Step 1102: both files checked and read, the transfer posted, the reflections posted, kept or flagged.
fn reconcile(
    story: &mut Story,
    report: &Path,
    notice: &Path,
) -> anyhow::Result<Vec<credit::FlaggedReflection>> {
    let contract = story.credit_keys.load_contract(BANK_ID, story.today)?;
    let mut reader = interchange::read_signed_status_report(report, contract.bank_identity())?;
    let head = reader.head().clone();
    let statuses = reader.by_ref().collect::<Result<Vec<_>, _>>()?;
    let notice = interchange::read_signed_transfer_notice(notice, contract.bank_identity())?;
    let notice_total = notice.head().total;
    let order = ReconciliationOrder {
        statement: head.original_message_id.clone(),
        bank_id: head.bank_id.as_bytes().to_vec(),
        notice_total,
    };
    let mut run = story.credit.begin_reconciliation(&order)?;
    let checked = run.check(statuses)?;
    run.check_total()?;
    for chunk in checked.chunks(CHUNK) {
        run.reconcile(chunk)?;
    }
    let summary = run.finish()?;
    let mut balances = Vec::new();
    for person in &PEOPLE {
        let account = story
            .credit
            .account(person.cardholder)
            .context("a cardholder of the story")?;
        balances.push(format!(
            "{} owes {}, {} available",
            person.name,
            money::format(account.outstanding, YEN),
            money::format(account.available, YEN)
        ));
    }
    let flagged: Vec<String> = summary
        .flagged
        .iter()
        .map(|f| {
            format!(
                "FLAGGED: token {} of {} on card ending {} ({}), {}: no pool deposit confirms it; the temporary credit is withdrawn",
                short(&hex::encode(f.token_id)),
                text(&f.bank_id),
                &f.pan[f.pan.len().saturating_sub(4)..],
                name_of_cardholder(&f.cardholder_id),
                money::format(f.amount, YEN)
            )
        })
        .collect();
    story.say(
        "reconciliation",
        &format!(
            "{} reconciles (Fig. 11): {} received; {} reflection(s) confirmed and posted ({}). {}. Now: {}",
            text(CREDIT_ID),
            money::format(summary.collected, YEN),
            summary.reflections_posted,
            money::format(summary.reflected_amount_posted, YEN),
            flagged.join("; "),
            balances.join("; ")
        ),
        json!({"received": summary.collected, "reflections_posted": summary.reflections_posted,
               "reflected_amount_posted": summary.reflected_amount_posted,
               "flagged": summary.flagged.iter().map(|f| json!({
                   "token_id": hex::encode(f.token_id), "bank_id": text(&f.bank_id), "pan": f.pan,
                   "cardholder": f.cardholder_id, "amount": f.amount})).collect::<Vec<_>>()}),
    );
    Ok(summary.flagged)
}

fn name_of(user_id: &str) -> &'static str {
    PEOPLE
        .iter()
        .find(|p| p.user == user_id)
        .map_or("someone", |p| p.name)
}

fn name_of_cardholder(cardholder_id: &str) -> &'static str {
    PEOPLE
        .iter()
        .find(|p| p.cardholder == cardholder_id)
        .map_or("someone", |p| p.name)
}
