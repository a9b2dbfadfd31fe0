//! Settlement day from the command line (patent Fig. 8, 11): `linkcard credit statement` writes the deduction
//! data, `linkcard bank settle` answers it with a status report and a transfer notice, `linkcard credit
//! reconcile` imports them. Every file is ISO 20022 XML with a detached signature (`NAME.xml.sig`), checked
//! against the contract's identity key of the sender before anything is imported; files are streamed, so a
//! million users need no more memory than a few.
//!
//! Each run commits in chunks and can be stopped anywhere: running the same command again completes it (nothing
//! taken or posted twice) and writes the same files. `bank settle` and `credit reconcile` import while they read (on
//! the second core) but commit nothing before the whole file is read and checked: a bad file is refused whole.
//! For the crash tests, `LINKCARD_CHUNK=N` sets the chunk size and `LINKCARD_CRASH_AT=POINT` aborts the process
//! at a named point after a chunk, a commit or a file (`statement:begun`, `statement:chunk:N`,
//! `statement:written`, `settle:begun`, `settle:chunk:N`, `settle:finished`, `settle:report-written`,
//! `settle:written`, `reconcile:checked`, `reconcile:chunk:N`, `reconcile:finished`).

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;

use anyhow::Context as _;
use bank::SettlementOrder;
use clap::Args;
use credit::{FlaggedReflection, ReconciliationOrder, StatementOrder};
use indicatif::{ProgressBar, ProgressStyle};
use interchange::{
    Date as IsoDate, Deduction, DeductionBody, DeductionFileHead, DeductionReader, DeductionStatus,
    DeductionWriter, Header, NoticeEntry, PipedSpool, SignedFile, Spool, SpoolFollower,
    StatusReportHead, StatusReportReader, StatusReportWriter, TransferNoticeBody,
    TransferNoticeHead, TransferNoticeReader, TransferNoticeWriter,
};
use serde_json::json;

use crate::datadir::DataDir;
use crate::money;
use crate::report::{JsonFlag, emit, now};

/// Deductions per durable commit.
const CHUNK: usize = 10_000;

/// [`CHUNK`], or `LINKCARD_CHUNK` for the crash tests, which need files of several chunks without thousands of
/// users.
fn chunk_size() -> usize {
    std::env::var("LINKCARD_CHUNK")
        .ok()
        .and_then(|size| size.parse().ok())
        .filter(|&size| size > 0)
        .unwrap_or(CHUNK)
}

/// How far below the ledger's thread the file threads stand with the scheduler (`nice` steps).
const FILE_THREAD_NICENESS: i32 = 10;

/// Puts the calling thread (one that reads or writes a file) behind the ledger's: the ledger's single writer is
/// a settlement's longest path, and with three busy threads on two cores a fair share would take a third of its
/// core away while the file threads, which run ahead anyway, catch up in its pauses. Best effort: a scheduler
/// that refuses leaves the threads fair.
fn behind_the_ledger() {
    let thread = rustix::thread::gettid();
    // Linux keeps a nice value per thread: PRIO_PROCESS with a thread's id moves that thread alone.
    if let Ok(now) = rustix::process::getpriority_process(Some(thread)) {
        let lower = (now + FILE_THREAD_NICENESS).min(19);
        let _ = rustix::process::setpriority_process(Some(thread), lower);
    }
}

#[derive(Debug, Args)]
pub struct StatementArgs {
    /// The bank whose account holders are collected (its contract's id).
    #[arg(long)]
    bank: String,
    /// The collection date, YYYY-MM-DD (default: today).
    #[arg(long, value_parser = parse_date)]
    date: Option<token::Date>,
    /// The file's message id (default: ST-<bank>-<date>); running the same id again resumes or rewrites it.
    #[arg(long)]
    message_id: Option<String>,
    /// Where to write MESSAGE-ID.xml and its signature (default: DATA/credit/outbox).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    #[command(flatten)]
    json: JsonFlag,
}

#[derive(Debug, Args)]
pub struct SettleArgs {
    /// The credit company's deduction file (pain.008), its signature beside it (FILE.sig).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Where to write the status report and the transfer notice (default: DATA/bank/outbox).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    #[command(flatten)]
    json: JsonFlag,
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// The bank's status report (pain.002), its signature beside it.
    #[arg(long, value_name = "FILE")]
    report: PathBuf,
    /// The bank's transfer notice (camt.054), its signature beside it.
    #[arg(long, value_name = "FILE")]
    notice: PathBuf,
    #[command(flatten)]
    json: JsonFlag,
}

/// Aborts the process here if `LINKCARD_CRASH_AT` names this point (crash tests only).
pub fn crash_point(point: &str) {
    if std::env::var("LINKCARD_CRASH_AT").is_ok_and(|wanted| wanted == point) {
        eprintln!("linkcard: crashing at {point} (LINKCARD_CRASH_AT)");
        std::process::abort();
    }
}

fn progress(total: u64, what: &str, json: JsonFlag) -> ProgressBar {
    if json.json {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    let style =
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({per_sec}, {eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style.progress_chars("=> "));
    bar.set_message(what.to_owned());
    bar
}

fn parse_date(text: &str) -> Result<token::Date, String> {
    let parts: Vec<&str> = text.split('-').collect();
    let [year, month, day] = parts.as_slice() else {
        return Err(format!("{text:?} is not a date: write YYYY-MM-DD"));
    };
    match (year.parse::<u16>(), month.parse::<u8>(), day.parse::<u8>()) {
        (Ok(y), Ok(m), Ok(d)) => token::Date::from_ymd(y, m, d)
            .ok_or_else(|| format!("{text:?} is not a day of the calendar")),
        _ => Err(format!("{text:?} is not a date: write YYYY-MM-DD")),
    }
}

pub(crate) fn iso_date(date: token::Date) -> anyhow::Result<IsoDate> {
    let (year, month, day) = date.ymd().context("a valid date")?;
    Ok(IsoDate { year, month, day })
}

fn token_date(date: IsoDate) -> anyhow::Result<token::Date> {
    token::Date::from_ymd(date.year, date.month, date.day).context("the file's date is not a day")
}

/// A message id derived from another: `PREFIX-ID`, or `PREFIX-` and a hash when that would be too long.
pub(crate) fn derived_message_id(prefix: &str, original: &str) -> String {
    let plain = format!("{prefix}-{original}");
    if plain.len() <= 35 {
        plain
    } else {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(original.as_bytes());
        format!("{prefix}-{}", hex::encode(&digest[..12]))
    }
}

fn outbox(given: &Option<PathBuf>, default: PathBuf) -> anyhow::Result<PathBuf> {
    let dir = given.clone().unwrap_or(default);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// The status report as the bank writes it.
type ReportWriter = StatusReportWriter<BufWriter<SignedFile>>;

/// A signed file being written (streamed: memory stays small whatever its size).
fn create_signed(path: &Path) -> anyhow::Result<BufWriter<SignedFile>> {
    let file =
        SignedFile::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(BufWriter::with_capacity(1 << 16, file))
}

/// Puts the file in place, then its signature (`NAME.sig`).
fn commit_signed(
    out: BufWriter<SignedFile>,
    path: &Path,
    key: &p256::ecdsa::SigningKey,
) -> anyhow::Result<()> {
    let file = out
        .into_inner()
        .map_err(|error| error.into_error())
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.commit(key)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Checks `path`'s signature by `key` before anything of it is read.
fn verify(path: &Path, key: &p256::PublicKey, sender: &str) -> anyhow::Result<()> {
    interchange::verify_file(path, key).with_context(|| {
        format!(
            "{} is refused: it is not signed by {sender}, or it was altered or cut short; nothing was imported",
            path.display()
        )
    })
}

fn open(path: &Path) -> anyhow::Result<BufReader<File>> {
    Ok(BufReader::new(File::open(path).with_context(|| {
        format!("cannot read {}", path.display())
    })?))
}

/// `linkcard credit statement`: the deduction data for one bank (step 1101).
pub fn statement(data: &DataDir, args: &StatementArgs) -> anyhow::Result<u8> {
    let mut credit = data.credit()?;
    let today = args
        .date
        .unwrap_or_else(|| card_client::scp11::date_from_today(0));
    let message_id = args
        .message_id
        .clone()
        .unwrap_or_else(|| format!("ST-{}-{}", args.bank, today));
    let order = StatementOrder {
        message_id: message_id.clone(),
        bank_id: args.bank.as_bytes().to_vec(),
        collection_date: today,
    };
    let currency = credit.settings.currency;
    let bar = progress(0, "statement", args.json);
    let (summary, body) =
        collect_statement(&mut credit.system, &order, &args.bank, currency, &bar)?;
    bar.finish_and_clear();
    if summary.items == 0 {
        emit(
            args.json,
            &format!(
                "statement {message_id}: no cardholder with a mandate at {} owes anything; no file written",
                args.bank
            ),
            &json!({"message_id": message_id, "items": 0, "total": 0, "file": null}),
        );
        return Ok(crate::EXIT_OK);
    }
    let head = DeductionFileHead {
        header: Header {
            message_id: message_id.clone(),
            created_unix_seconds: summary.created_unix_seconds,
        },
        credit_id: credit.settings.id.clone(),
        bank_id: args.bank.clone(),
        creditor_account: credit.settings.id.clone(),
        collection_date: iso_date(summary.collection_date)?,
        currency,
        count: summary.items,
        control_sum: summary.total,
    };
    let dir = outbox(&args.out, data.credit_dir().join("outbox"))?;
    let path = dir.join(format!("{message_id}.xml"));
    let written = DeductionWriter::with_body(create_signed(&path)?, &head, body)?;
    commit_signed(written, &path, credit.keys.organisation().identity())?;
    crash_point("statement:written");
    emit(
        args.json,
        &format!(
            "statement {message_id} for {}: {} due from {} cardholders, {} reflected token(s) to confirm\nwritten to {} (pain.008.001.08, signed): send it with its .sig to the bank",
            args.bank,
            money::format(summary.total, currency),
            summary.items,
            summary.tokens,
            path.display()
        ),
        &json!({"message_id": message_id, "bank": args.bank, "items": summary.items, "total": summary.total,
                "tokens": summary.tokens, "file": path.display().to_string()}),
    );
    Ok(crate::EXIT_OK)
}

/// Collects the statement's deductions (resuming one stopped before) while a second thread writes them as XML:
/// the file's head needs the count and sum, known once every cardholder was looked at, so the deductions wait
/// in a [`DeductionBody`]. Deductions a stopped run already committed come first, read back in order.
fn collect_statement(
    credit: &mut credit::Credit<ledger::SqliteStore>,
    order: &StatementOrder,
    bank: &str,
    currency: u16,
    bar: &ProgressBar,
) -> anyhow::Result<(credit::StatementSummary, DeductionBody)> {
    std::thread::scope(|scope| {
        let (deductions, received) = std::sync::mpsc::sync_channel::<Vec<Deduction>>(4);
        let writer = scope.spawn(move || {
            let mut body = DeductionBody::new(bank, currency)?;
            for chunk in received {
                for deduction in &chunk {
                    body.write(deduction)?;
                }
            }
            anyhow::Ok(body)
        });
        let send = |chunk: Vec<Deduction>| {
            deductions
                .send(chunk)
                .map_err(|_| anyhow::anyhow!("writing the deduction file stopped"))
        };
        let collected = (|| -> anyhow::Result<credit::StatementSummary> {
            if credit.statement(&order.message_id)?.is_some() {
                let mut after = String::new();
                loop {
                    let page = credit.statement_items(&order.message_id, &after, chunk_size())?;
                    let Some(last) = page.last() else { break };
                    after = last.end_to_end_id.clone();
                    send(page)?;
                }
            }
            let mut run = credit.begin_statement(order, now())?;
            crash_point("statement:begun");
            let mut chunks = 0u64;
            run.collect_all(chunk_size(), |looked, written| {
                bar.inc(looked as u64);
                send(written)?;
                chunks += 1;
                crash_point(&format!("statement:chunk:{chunks}"));
                anyhow::Ok(())
            })?;
            Ok(run.finish()?)
        })();
        drop(deductions);
        // The writer's own error says more than the collection's "stopped".
        let body = writer
            .join()
            .map_err(|_| anyhow::anyhow!("writing the deduction file stopped unexpectedly"))??;
        anyhow::Ok((collected?, body))
    })
}

/// `linkcard bank settle`: the deduction file settled, answered with a status report and a transfer notice.
pub fn settle(data: &DataDir, args: &SettleArgs) -> anyhow::Result<u8> {
    let mut bank = data.bank()?;
    let head = DeductionReader::new(open(&args.file)?)
        .with_context(|| {
            format!(
                "{} is refused: it is not a deduction file; nothing was imported",
                args.file.display()
            )
        })?
        .head()
        .clone();
    let contract = bank
        .keys
        .load_contract(
            head.credit_id.as_bytes(),
            card_client::scp11::date_from_today(0),
        )
        .with_context(|| {
            format!(
                "no contract with credit company {}: its files cannot be checked",
                head.credit_id
            )
        })?;
    verify(&args.file, contract.credit_identity(), &head.credit_id)?;
    anyhow::ensure!(
        head.bank_id == bank.settings.id,
        "{} is addressed to bank {}, not to this bank ({}): nothing was imported",
        args.file.display(),
        head.bank_id,
        bank.settings.id
    );
    let order = SettlementOrder {
        message_id: head.header.message_id.clone(),
        credit_id: head.credit_id.as_bytes().to_vec(),
        collection_date: token_date(head.collection_date)?,
        currency: head.currency,
    };
    let dir = outbox(&args.out, data.bank_dir().join("outbox"))?;
    let identity = bank.keys.organisation().identity().clone();
    let run = bank.system.begin_settlement(&order, now())?;
    crash_point("settle:begun");
    let report_id = derived_message_id("RP", &head.header.message_id);
    let report_head = StatusReportHead {
        header: Header {
            message_id: report_id.clone(),
            created_unix_seconds: run.summary().started_unix_seconds,
        },
        bank_id: head.bank_id.clone(),
        credit_id: head.credit_id.clone(),
        original_message_id: head.header.message_id.clone(),
        currency: head.currency,
        count: head.count,
        control_sum: head.control_sum,
    };
    let report_path = dir.join(format!("{report_id}.xml"));
    let report = StatusReportWriter::new(create_signed(&report_path)?, &report_head)?;
    let bar = progress(head.count, "settling", args.json);
    let notice = TransferNoticeBody::new(head.currency)?;
    let (summary, report, collected) =
        settle_while_reading(run, &args.file, (report, notice), &bar)?;
    bar.finish_and_clear();
    crash_point("settle:finished");
    commit_signed(report.finish()?, &report_path, &identity)?;
    crash_point("settle:report-written");
    let notice_path = write_notice(&head, &summary, collected, &report_path, &dir, &identity)?;
    crash_point("settle:written");
    report_settlement(args.json, &head, &summary, &report_path, &notice_path);
    Ok(crate::EXIT_OK)
}

/// What `bank settle` did, said to the user (or in `--json`).
fn report_settlement(
    json: JsonFlag,
    head: &DeductionFileHead,
    summary: &bank::SettlementSummary,
    report_path: &Path,
    notice_path: &Path,
) {
    let currency = head.currency;
    let f = |amount| money::format(amount, currency);
    emit(
        json,
        &format!(
            "settled {} for {}: {} deductions ({} accepted, {} partly, {} rejected, {} duplicates); {} collected ({} from pools, {} from personal accounts), {} short; {} token(s) not confirmed\ntransferred {} to {}\nwritten: {} (pain.002.001.10) and {} (camt.054.001.08), signed: send them to the credit company",
            head.header.message_id,
            head.credit_id,
            summary.deductions,
            summary.accepted,
            summary.partial,
            summary.rejected,
            summary.duplicates,
            f(summary.collected()),
            f(summary.from_pool),
            f(summary.from_personal),
            f(summary.shortfall),
            summary.unconfirmed_tokens,
            f(summary.collected()),
            head.credit_id,
            report_path.display(),
            notice_path.display()
        ),
        &json!({"message_id": head.header.message_id, "credit": head.credit_id, "deductions": summary.deductions,
                "accepted": summary.accepted, "partial": summary.partial, "rejected": summary.rejected,
                "duplicates": summary.duplicates, "due": summary.due, "collected": summary.collected(),
                "from_pool": summary.from_pool, "from_personal": summary.from_personal,
                "shortfall": summary.shortfall, "unconfirmed_tokens": summary.unconfirmed_tokens,
                "report": report_path.display().to_string(), "notice": notice_path.display().to_string()}),
    );
}

/// Settles the file while it is read. Three threads: one reads the file, one settles what was read, one writes
/// the answers. Nothing is committed before the whole file is read and checked (a malformed one is refused whole:
/// see `Settlement::settle_file`). Answers the summary, the report written and the notice's entries.
fn settle_while_reading(
    run: bank::Settlement<'_, ledger::SqliteStore>,
    file: &Path,
    (report, notice): (ReportWriter, TransferNoticeBody),
    bar: &ProgressBar,
) -> anyhow::Result<(bank::SettlementSummary, ReportWriter, TransferNoticeBody)> {
    let read_whole = AtomicBool::new(false);
    let mut chunks_done = 0u64;
    std::thread::scope(|scope| {
        let (spool, deductions) = Spool::piped()?;
        let reader = scope.spawn(|| read_deductions(file, &read_whole, spool));
        let (answers, answered) = std::sync::mpsc::sync_channel::<Vec<DeductionStatus>>(2);
        let writer = scope.spawn(move || write_answers((report, notice), answered));
        let settled = run.settle_file(
            in_chunks(deductions),
            || read_whole.load(Ordering::Acquire),
            |statuses| {
                bar.inc(statuses.len() as u64);
                answers
                    .send(statuses)
                    .map_err(|_| anyhow::anyhow!("writing the status report stopped"))?;
                chunks_done += 1;
                crash_point(&format!("settle:chunk:{chunks_done}"));
                anyhow::Ok(())
            },
        );
        drop(answers);
        // The reader's and the writer's own errors say more than the settlement's "stopped".
        let stopped = || anyhow::anyhow!("reading or answering the file stopped unexpectedly");
        reader.join().map_err(|_| stopped())??;
        let (report, collected) = writer.join().map_err(|_| stopped())??;
        anyhow::Ok((settled?, report, collected))
    })
}

/// A spool's items in chunks of [`chunk_size`], as the settlement and the reconciliation take them.
fn in_chunks<T: serde::de::DeserializeOwned>(
    mut items: SpoolFollower<T>,
) -> impl Iterator<Item = anyhow::Result<Vec<T>>> {
    let size = chunk_size();
    std::iter::from_fn(
        move || match items.by_ref().take(size).collect::<Result<Vec<_>, _>>() {
            Ok(chunk) if chunk.is_empty() => None,
            Ok(chunk) => Some(Ok(chunk)),
            Err(error) => Some(Err(anyhow::Error::from(error))),
        },
    )
}

/// Reads the deduction file on its own thread into a spool, publishing it chunk by chunk; sets `read_whole` once
/// every deduction is read and the file's counts are checked. An error stops it unpublished (and is its answer).
/// The reader runs ahead of the settlement as far as it can: the sooner the file is read whole, the sooner the
/// settlement commits (see `Settlement::settle_file`).
fn read_deductions(
    path: &Path,
    read_whole: &AtomicBool,
    mut spool: PipedSpool<Deduction>,
) -> anyhow::Result<()> {
    behind_the_ledger();
    let refused = || format!("{} is refused; nothing was imported", path.display());
    let size = chunk_size();
    let mut count = 0;
    for deduction in DeductionReader::new(open(path)?).with_context(refused)? {
        spool.push(&deduction.with_context(refused)?)?;
        count += 1;
        if count % size == 0 {
            spool.publish()?;
        }
    }
    // Only once every deduction is in the follower's reach: the settlement commits when it sees the flag.
    spool.publish()?;
    read_whole.store(true, Ordering::Release);
    Ok(())
}

/// Writes each settled chunk's statuses into the report, and what moved money into the notice's body (its head
/// needs the totals, so the notice is put together after).
fn write_answers<W: std::io::Write>(
    (mut report, mut notice): (StatusReportWriter<W>, TransferNoticeBody),
    answered: Receiver<Vec<DeductionStatus>>,
) -> anyhow::Result<(StatusReportWriter<W>, TransferNoticeBody)> {
    behind_the_ledger();
    for statuses in answered {
        for status in statuses {
            report.write(&status)?;
            let amount = status.from_pool + status.from_personal;
            if amount > 0 {
                notice.write(&NoticeEntry {
                    end_to_end_id: status.end_to_end_id,
                    amount,
                })?;
            }
        }
    }
    Ok((report, notice))
}

/// The transfer notice of the deductions that moved money.
fn write_notice(
    head: &DeductionFileHead,
    summary: &bank::SettlementSummary,
    collected: TransferNoticeBody,
    report: &Path,
    dir: &Path,
    identity: &p256::ecdsa::SigningKey,
) -> anyhow::Result<PathBuf> {
    let notice_id = derived_message_id("NT", &head.header.message_id);
    let path = dir.join(format!("{notice_id}.xml"));
    // Accepted and partly collected deductions moved money; rejected ones and duplicates did not.
    let count = summary.accepted + summary.partial;
    if count == 0 {
        anyhow::bail!(
            "nothing was collected for {}: every deduction was rejected; the status report {} says why",
            head.header.message_id,
            report.display()
        );
    }
    let notice_head = TransferNoticeHead {
        header: Header {
            message_id: notice_id,
            created_unix_seconds: summary.started_unix_seconds,
        },
        bank_id: head.bank_id.clone(),
        credit_id: head.credit_id.clone(),
        original_message_id: head.header.message_id.clone(),
        account: head.creditor_account.clone(),
        booking_date: head.collection_date,
        currency: head.currency,
        count,
        total: summary.collected(),
    };
    anyhow::ensure!(
        collected.count() == count,
        "the settlement of {} counted {count} collections but listed {}",
        head.header.message_id,
        collected.count()
    );
    let notice = TransferNoticeWriter::with_body(create_signed(&path)?, &notice_head, collected)?;
    commit_signed(notice, &path, identity)?;
    Ok(path)
}

/// `linkcard credit reconcile`: the bank's answer imported (step 1102).
pub fn reconcile(data: &DataDir, args: &ReconcileArgs) -> anyhow::Result<u8> {
    let mut credit = data.credit()?;
    let head = StatusReportReader::new(open(&args.report)?)
        .with_context(|| {
            format!(
                "{} is refused: it is not a status report; nothing was imported",
                args.report.display()
            )
        })?
        .head()
        .clone();
    let contract = credit
        .keys
        .load_contract(
            head.bank_id.as_bytes(),
            card_client::scp11::date_from_today(0),
        )
        .with_context(|| {
            format!(
                "no contract with bank {}: its files cannot be checked",
                head.bank_id
            )
        })?;
    verify(&args.report, contract.bank_identity(), &head.bank_id)?;
    verify(&args.notice, contract.bank_identity(), &head.bank_id)?;
    let notice_head = TransferNoticeReader::new(open(&args.notice)?)
        .with_context(|| {
            format!(
                "{} is refused: it is not a transfer notice; nothing was imported",
                args.notice.display()
            )
        })?
        .head()
        .clone();
    anyhow::ensure!(
        notice_head.original_message_id == head.original_message_id
            && notice_head.bank_id == head.bank_id,
        "{} answers {} of bank {}, but {} answers {} of bank {}: they do not belong together; nothing was imported",
        args.notice.display(),
        notice_head.original_message_id,
        notice_head.bank_id,
        args.report.display(),
        head.original_message_id,
        head.bank_id
    );
    let order = ReconciliationOrder {
        statement: head.original_message_id.clone(),
        bank_id: head.bank_id.as_bytes().to_vec(),
        notice_total: notice_head.total,
    };
    let run = credit.system.begin_reconciliation(&order)?;
    // A second connection checks the answer while this one reconciles it; nothing is committed before the whole
    // answer is read and checked (a wrong one is refused whole: see `Reconciliation::reconcile_file`).
    let mut checker = data.credit()?;
    let mut check = checker.system.begin_reconciliation(&order)?;
    let bar = progress(head.count, "reconciling", args.json);
    let summary = reconcile_while_checking(run, &mut check, args, &bar)?;
    bar.finish_and_clear();
    crash_point("reconcile:finished");
    report_reconciliation(
        args.json,
        &head.original_message_id,
        &head.bank_id,
        credit.settings.currency,
        &summary,
    );
    Ok(crate::EXIT_OK)
}

/// Reads every entry of the transfer notice (each checked, the counts and total too).
fn read_notice(path: &Path) -> anyhow::Result<()> {
    behind_the_ledger();
    for entry in TransferNoticeReader::new(open(path)?)? {
        entry.with_context(|| format!("{} is refused; nothing was imported", path.display()))?;
    }
    Ok(())
}

/// Reconciles the answer while `check` (on a connection of its own) reads and checks it: nothing is committed
/// before the whole answer is read and checked, the notice too (a wrong one is refused whole: see
/// `Reconciliation::reconcile_file`).
fn reconcile_while_checking(
    run: credit::Reconciliation<'_, ledger::SqliteStore>,
    check: &mut credit::Reconciliation<'_, ledger::SqliteStore>,
    args: &ReconcileArgs,
    bar: &ProgressBar,
) -> anyhow::Result<credit::ReconciliationSummary> {
    let checked_whole = AtomicBool::new(false);
    let mut chunks_done = 0u64;
    std::thread::scope(|scope| {
        let (mut spool, statuses) = Spool::piped()?;
        let notice = scope.spawn(|| read_notice(&args.notice));
        let checking = scope.spawn(|| {
            check_answer(&args.report, check, &mut spool)?;
            notice
                .join()
                .map_err(|_| anyhow::anyhow!("reading the notice stopped unexpectedly"))??;
            checked_whole.store(true, Ordering::Release);
            crash_point("reconcile:checked");
            // Only now may the reconciliation see the answer's end: it commits once it sees the flag.
            drop(spool);
            anyhow::Ok(())
        });
        let reconciled = run.reconcile_file(
            in_chunks(statuses),
            || checked_whole.load(Ordering::Acquire),
            |count, _flagged| {
                bar.inc(count as u64);
                chunks_done += 1;
                crash_point(&format!("reconcile:chunk:{chunks_done}"));
                anyhow::Ok(())
            },
        );
        // The check's own error says more than the reconciliation's "stopped".
        checking
            .join()
            .map_err(|_| anyhow::anyhow!("checking the answer stopped unexpectedly"))??;
        reconciled
    })
}

/// Reads the whole status report on its own thread, checks it chunk by chunk against the statement (and its total
/// against the notice's) and spools what was checked for the reconciliation; an error stops it unpublished (and
/// is its answer).
fn check_answer(
    path: &Path,
    check: &mut credit::Reconciliation<'_, ledger::SqliteStore>,
    spool: &mut PipedSpool<credit::CheckedStatus>,
) -> anyhow::Result<()> {
    behind_the_ledger();
    let refused = || format!("{} is refused; nothing was imported", path.display());
    let size = chunk_size();
    let mut chunk = Vec::with_capacity(size);
    let mut check_and_publish = |chunk: &mut Vec<DeductionStatus>| -> anyhow::Result<()> {
        for checked in check.check(core::mem::take(chunk))? {
            spool.push(&checked)?;
        }
        Ok(spool.publish()?)
    };
    for status in StatusReportReader::new(open(path)?).with_context(refused)? {
        chunk.push(status.with_context(refused)?);
        if chunk.len() == size {
            check_and_publish(&mut chunk)?;
        }
    }
    check_and_publish(&mut chunk)?;
    Ok(check.check_total()?)
}

fn report_reconciliation(
    json: JsonFlag,
    statement: &str,
    bank: &str,
    currency: u16,
    summary: &credit::ReconciliationSummary,
) {
    let f = |amount| money::format(amount, currency);
    let mut text = format!(
        "reconciled {statement} with {bank}: {} deductions, {} received of {} due ({} short); {} temporary credit(s) confirmed and posted ({}), {} kept for what is left in the pool",
        summary.deductions,
        f(summary.collected),
        f(summary.due),
        f(summary.shortfall),
        summary.reflections_posted,
        f(summary.reflected_amount_posted),
        summary.reflections_kept
    );
    if summary.flagged.is_empty() {
        text += "\nevery temporary credit is backed by a deposit at the bank";
    }
    for flagged in &summary.flagged {
        text += &format!("\n{}", describe_flagged(flagged, currency));
    }
    emit(
        json,
        &text,
        &json!({"statement": statement, "bank": bank, "deductions": summary.deductions, "due": summary.due,
                "received": summary.collected, "shortfall": summary.shortfall,
                "reflections_posted": summary.reflections_posted,
                "reflected_amount_posted": summary.reflected_amount_posted,
                "reflections_kept": summary.reflections_kept,
                "flagged": summary.flagged.iter().map(|f| json!({
                    "token_id": hex::encode(f.token_id), "bank_id": String::from_utf8_lossy(&f.bank_id),
                    "pan": f.pan, "cardholder": f.cardholder_id, "amount": f.amount,
                    "authorization_id": format!("{:032x}", f.authorization_id),
                    "end_to_end_id": f.end_to_end_id})).collect::<Vec<_>>()}),
    );
}

fn describe_flagged(flagged: &FlaggedReflection, currency: u16) -> String {
    format!(
        "INVALID TOKEN {} of bank {}: card ending {} (cardholder {}), {} reflected by authorization {:032x}; no pool deposit confirms it, the temporary credit is withdrawn",
        hex::encode(flagged.token_id),
        String::from_utf8_lossy(&flagged.bank_id),
        &flagged.pan[flagged.pan.len().saturating_sub(4)..],
        flagged.cardholder_id,
        money::format(flagged.amount, currency),
        flagged.authorization_id
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_thread_stands_behind_the_ledger_and_the_ledger_stays_where_it_was() {
        let niceness = || rustix::process::getpriority_process(Some(rustix::thread::gettid()));
        let ledger = niceness().unwrap();
        let file_thread = std::thread::spawn(move || {
            behind_the_ledger();
            niceness().unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(file_thread, (ledger + FILE_THREAD_NICENESS).min(19));
        assert!(ledger == 19 || file_thread > ledger);
        assert_eq!(niceness().unwrap(), ledger);
    }

    #[test]
    fn dates_are_read_as_people_write_them() {
        assert_eq!(
            parse_date("2027-01-10"),
            Ok(token::Date::from_ymd(2027, 1, 10).unwrap())
        );
        assert!(parse_date("2027-02-30").is_err());
        assert!(parse_date("10/01/2027").is_err());
        assert!(parse_date("2027-257-01").is_err());
    }

    #[test]
    fn derived_message_ids_stay_short() {
        assert_eq!(
            derived_message_id("RP", "ST-BANK0001-2027-01-10"),
            "RP-ST-BANK0001-2027-01-10"
        );
        let long = derived_message_id("RP", &"X".repeat(35));
        assert!(long.len() <= 35 && long.starts_with("RP-"));
    }
}
