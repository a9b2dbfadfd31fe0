//! The demo's settlement day (patent Fig. 8, 11): the credit company's statement, the bank's withdrawals and
//! transfer, the credit company's reconciliation, told with everyone's balances.

use std::path::Path;

use anyhow::Context;
use bank::SettlementOrder;
use credit::{ReconciliationOrder, StatementOrder};
use interchange::{Deduction, DeductionStatus, TransactionStatus};
use serde_json::json;

use super::{BANK_ID, CREDIT_ID, HANAKO, JIRO, PEOPLE, Story, TARO, YEN, now, short, text};
use crate::money;

/// Deductions per durable commit (the demo's few users fit in one; big files run in many).
const CHUNK: usize = 1_000;

/// Runs settlement day; whether it turned out as the patent says (Hanako paid from her pool deposit, Taro from
/// his personal account, Jiro short, and only Jiro's reflection flagged).
pub(super) fn settlement_day(story: &mut Story, dir: &Path) -> anyhow::Result<bool> {
    let message_id = format!("ST-{}-{}", text(CREDIT_ID), story.today);
    let deductions = statement(story, &message_id)?;
    let statuses = settle(story, &message_id, &deductions)?;
    let flagged = reconcile(story, &message_id, &statuses)?;
    let _ = dir;
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

/// Step 1101: the deduction data, one line per cardholder who owes something.
fn statement(story: &mut Story, message_id: &str) -> anyhow::Result<Vec<Deduction>> {
    let order = StatementOrder {
        message_id: message_id.to_owned(),
        bank_id: BANK_ID.to_vec(),
        collection_date: story.today,
    };
    let mut run = story.credit.begin_statement(&order, now())?;
    run.collect_all(CHUNK, |_| {})?;
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
    story.say(
        "statement",
        &format!(
            "Settlement day. {}'s deduction data for {} (step 1101): {} due from {} cardholders: {}",
            text(CREDIT_ID),
            text(BANK_ID),
            money::format(summary.total, YEN),
            summary.items,
            lines.join("; ")
        ),
        json!({"message_id": message_id, "items": summary.items, "total": summary.total, "tokens": summary.tokens}),
    );
    Ok(deductions)
}

/// Steps 802-805: each due sum from the pool first, then the personal account; the batch transfer.
fn settle(
    story: &mut Story,
    message_id: &str,
    deductions: &[Deduction],
) -> anyhow::Result<Vec<DeductionStatus>> {
    let order = SettlementOrder {
        message_id: message_id.to_owned(),
        credit_id: CREDIT_ID.to_vec(),
        collection_date: story.today,
        currency: YEN,
    };
    let mut run = story.bank.begin_settlement(&order, now())?;
    let mut statuses = Vec::with_capacity(deductions.len());
    for chunk in deductions.chunks(CHUNK) {
        statuses.extend(run.settle(chunk)?);
    }
    let summary = run.finish()?;
    let mut lines = Vec::new();
    for (deduction, status) in deductions.iter().zip(&statuses) {
        lines.push(describe_status(deduction, status));
    }
    story.say(
        "settlement",
        &format!(
            "{} settles (Fig. 8): {}. It transferred {} to {} ({} from pools, {} from personal accounts, {} short)",
            text(BANK_ID),
            lines.join("; "),
            money::format(summary.collected(), YEN),
            text(CREDIT_ID),
            money::format(summary.from_pool, YEN),
            money::format(summary.from_personal, YEN),
            money::format(summary.shortfall, YEN),
        ),
        json!({"collected": summary.collected(), "from_pool": summary.from_pool,
               "from_personal": summary.from_personal, "shortfall": summary.shortfall,
               "accepted": summary.accepted, "partial": summary.partial, "rejected": summary.rejected,
               "unconfirmed_tokens": summary.unconfirmed_tokens}),
    );
    Ok(statuses)
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

/// Step 1102: the transfer posted, the reflections posted, kept or flagged.
fn reconcile(
    story: &mut Story,
    message_id: &str,
    statuses: &[DeductionStatus],
) -> anyhow::Result<Vec<credit::FlaggedReflection>> {
    let collected = statuses.iter().map(|s| s.from_pool + s.from_personal).sum();
    let order = ReconciliationOrder {
        statement: message_id.to_owned(),
        bank_id: BANK_ID.to_vec(),
        notice_total: collected,
    };
    let mut run = story.credit.begin_reconciliation(&order)?;
    for chunk in statuses.chunks(CHUNK) {
        run.check(chunk)?;
    }
    run.check_total()?;
    for chunk in statuses.chunks(CHUNK) {
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
