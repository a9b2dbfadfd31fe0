//! The batch transfer to the credit company (bank → credit company) as `camt.054.001.08`, bank-to-customer
//! debit/credit notification: one notification of one booked credit entry whose batch details list each collected
//! deduction (`TxDtls`).

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use crate::error::{FieldProblem, InterchangeError, Result};
use crate::tally::Tally;
use crate::tape::Tape;
use crate::values::{self, Currency, MAX_COUNT, same_number};
use crate::xml::{
    Agent, Amount, DocumentWriter, ItemBody, ItemStream, Layout, OtherId, Party, Txt, item_text,
    required,
};
use crate::{Date, Header, NoticeEntry, TransferNotice};

/// The XML namespace of the transfer notice.
pub const CAMT_054_NAMESPACE: &str = "urn:iso:std:iso:20022:tech:xsd:camt.054.001.08";

static LAYOUT: Layout = Layout {
    namespace: CAMT_054_NAMESPACE,
    path: &[
        "Document",
        "BkToCstmrDbtCdtNtfctn",
        "Ntfctn",
        "Ntry",
        "NtryDtls",
    ],
    item: "TxDtls",
    description: "transfer notice (camt.054)",
};

const COUNT_FIELD: &str = "Ntfctn/Ntry/NtryDtls/Btch/NbOfTxs";
const TOTAL_FIELD: &str = "Ntfctn/Ntry/Amt";
/// External bank transaction code of the entry: payments, issued direct debits, direct debit payment.
const BANK_TRANSACTION_CODE: (&str, &str, &str) = ("PMNT", "IDDT", "PMDD");

/// Everything a transfer notice says before its entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferNoticeHead {
    pub header: Header,
    pub bank_id: String,
    pub credit_id: String,
    pub original_message_id: String,
    pub account: String,
    pub booking_date: Date,
    /// ISO 4217 numeric.
    pub currency: u16,
    /// How many entries follow (`Btch/NbOfTxs`), at least one.
    pub count: u64,
    /// The amount transferred (`Ntry/Amt`), the sum of the entries.
    pub total: u64,
}

impl TransferNotice {
    /// The notice's head, with the count of its entries.
    pub fn head(&self) -> TransferNoticeHead {
        TransferNoticeHead {
            header: self.header.clone(),
            bank_id: self.bank_id.clone(),
            credit_id: self.credit_id.clone(),
            original_message_id: self.original_message_id.clone(),
            account: self.account.clone(),
            booking_date: self.booking_date,
            currency: self.currency,
            count: u64::try_from(self.entries.len()).unwrap_or(u64::MAX),
            total: self.total,
        }
    }

    /// Writes the whole notice as camt.054 XML to `out` and gives `out` back; refuses a `total` that is not the
    /// sum of the entries.
    pub fn write_xml<W: Write>(&self, out: W) -> Result<W> {
        let mut writer = TransferNoticeWriter::new(out, &self.head())?;
        for entry in &self.entries {
            writer.write(entry)?;
        }
        writer.finish()
    }

    /// The whole notice as camt.054 XML.
    pub fn to_xml(&self) -> Result<Vec<u8>> {
        self.write_xml(Vec::new())
    }

    /// Reads a whole camt.054 notice (for large files, [`TransferNoticeReader`] reads one entry at a time).
    pub fn from_xml(xml: &[u8]) -> Result<Self> {
        let mut reader = TransferNoticeReader::new(xml)?;
        let entries = reader.by_ref().collect::<Result<Vec<_>>>()?;
        let head = reader.head;
        Ok(Self {
            header: head.header,
            bank_id: head.bank_id,
            credit_id: head.credit_id,
            original_message_id: head.original_message_id,
            account: head.account,
            booking_date: head.booking_date,
            currency: head.currency,
            total: head.total,
            entries,
        })
    }
}

/// Writes a camt.054 notice one entry at a time; [`Self::finish`] checks the count and total the head promised.
pub struct TransferNoticeWriter<W: Write> {
    document: DocumentWriter<W>,
    head: TransferNoticeHead,
    currency: Currency,
    tally: Tally,
    text: String,
}

impl<W: Write> TransferNoticeWriter<W> {
    /// Checks `head` and writes it.
    pub fn new(out: W, head: &TransferNoticeHead) -> Result<Self> {
        let currency = check_head(head)?;
        let document = DocumentWriter::start(out, &LAYOUT, &head_xml(head, currency))?;
        Ok(Self {
            document,
            head: head.clone(),
            currency,
            tally: Tally::new(head.count),
            text: String::with_capacity(512),
        })
    }

    /// Checks and writes one entry; a refused entry leaves the output as it was.
    pub fn write(&mut self, entry: &NoticeEntry) -> Result<()> {
        let index = self.tally.count() + 1;
        self.write_item(entry).map_err(|error| error.in_item(index))
    }

    fn write_item(&mut self, entry: &NoticeEntry) -> Result<()> {
        let room = (&mut self.tally, self.head.count);
        prepare_entry(entry, self.currency, room, &mut self.text)?;
        self.document.put_items(&mut self.text.as_bytes())
    }

    /// Writes a whole notice from entries written before their head was known ([`TransferNoticeBody`]): the
    /// head, then the body as it is; refused unless the body is in the head's currency and holds the count and
    /// total the head declares.
    pub fn with_body(out: W, head: &TransferNoticeHead, body: TransferNoticeBody) -> Result<W> {
        let currency = check_head(head)?;
        let currency_field = ("the entries' currency", "Ntfctn/Ntry/Amt/@Ccy");
        body.body.check_currency(currency, currency_field)?;
        let totals = |tally: &Tally| {
            tally.check_totals((COUNT_FIELD, head.count), (TOTAL_FIELD, head.total))
        };
        DocumentWriter::with_body(out, (&LAYOUT, &head_xml(head, currency)), body.body, totals)
    }

    /// Closes the document once the promised count and total were written; gives the output back.
    pub fn finish(self) -> Result<W> {
        self.tally.check_totals(
            (COUNT_FIELD, self.head.count),
            (TOTAL_FIELD, self.head.total),
        )?;
        self.document.finish()
    }
}

/// A notice's entries, written before its head is known: the bank learns the batch's count and total only once
/// the settlement is over, and writes the entries meanwhile (on another core). Each is checked and kept as XML in
/// an anonymous temporary file; [`TransferNoticeWriter::with_body`] writes the notice.
pub struct TransferNoticeBody {
    body: ItemBody,
}

impl TransferNoticeBody {
    /// An empty body for a notice in `currency` (ISO 4217 numeric).
    pub fn new(currency: u16) -> Result<Self> {
        Ok(Self {
            body: ItemBody::new(currency)?,
        })
    }

    /// Checks and writes one entry; a refused one leaves the body as it was.
    pub fn write(&mut self, entry: &NoticeEntry) -> Result<()> {
        let body = &mut self.body;
        let index = body.tally.count() + 1;
        prepare_entry(
            entry,
            body.currency,
            (&mut body.tally, MAX_COUNT),
            &mut body.text,
        )
        .and_then(|()| body.commit_item())
        .map_err(|error| error.in_item(index))
    }

    /// How many entries it holds.
    pub fn count(&self) -> u64 {
        self.body.tally.count()
    }
}

impl core::fmt::Debug for TransferNoticeBody {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter
            .debug_struct("TransferNoticeBody")
            .field("currency", &self.body.currency.numeric)
            .field("written", &self.body.tally.count())
            .finish_non_exhaustive()
    }
}

/// What both notice writers do before an entry reaches their output: check it, count it against `room` (and its
/// end-to-end id against those counted before), and serialize it into `text`.
fn prepare_entry(
    entry: &NoticeEntry,
    currency: Currency,
    (tally, room): (&mut Tally, u64),
    text: &mut String,
) -> Result<()> {
    tally.check_room(room, COUNT_FIELD)?;
    values::check_text(&entry.end_to_end_id, "TxDtls/Refs/EndToEndId", 35)?;
    values::check_amount(entry.amount, "TxDtls/Amt", true)?;
    let transaction = EntryTransaction {
        references: References {
            end_to_end_id: entry.end_to_end_id.as_str().into(),
        },
        amount: Amount::new(entry.amount, currency),
        credit_debit: CREDIT.into(),
    };
    item_text(LAYOUT.item, &transaction, text)?;
    tally.add(&entry.end_to_end_id, entry.amount, TOTAL_FIELD)
}

impl<W: Write> core::fmt::Debug for TransferNoticeWriter<W> {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter
            .debug_struct("TransferNoticeWriter")
            .field("head", &self.head)
            .field("written", &self.tally.count())
            .finish_non_exhaustive()
    }
}

/// Reads a camt.054 notice: [`Self::head`], then the entries one at a time as an iterator, whose last item is an
/// error if `Btch/NbOfTxs` or the entry's amount disagree with the entries.
pub struct TransferNoticeReader<R: BufRead> {
    stream: ItemStream<R>,
    head: TransferNoticeHead,
    currency: Currency,
    tally: Tally,
    done: bool,
}

impl<R: BufRead> TransferNoticeReader<R> {
    /// Reads and checks the head (and the first entry's XML).
    pub fn new(input: R) -> Result<Self> {
        let (stream, head_text) = ItemStream::open(input, &LAYOUT)?;
        let document: HeadDocument<'_> = quick_xml::de::from_str(&head_text).map_err(|source| {
            InterchangeError::Deserialize {
                element: "Document",
                source,
            }
        })?;
        let (head, currency) = read_head(&document)?;
        Ok(Self {
            stream,
            tally: Tally::new(head.count),
            head,
            currency,
            done: false,
        })
    }

    pub fn head(&self) -> &TransferNoticeHead {
        &self.head
    }

    fn read_next(&mut self) -> Result<Option<NoticeEntry>> {
        let index = self.tally.count() + 1;
        let Some(xml) = self.stream.next_item()? else {
            self.tally.check_totals(
                (COUNT_FIELD, self.head.count),
                (TOTAL_FIELD, self.head.total),
            )?;
            return Ok(None);
        };
        read_entry(xml, &self.head, self.currency, &mut self.tally)
            .map(Some)
            .map_err(|error| error.in_item(index))
    }
}

impl<R: BufRead> Iterator for TransferNoticeReader<R> {
    type Item = Result<NoticeEntry>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = self.read_next().transpose();
        self.done = !matches!(next, Some(Ok(_)));
        next
    }
}

impl<R: BufRead> core::fmt::Debug for TransferNoticeReader<R> {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter
            .debug_struct("TransferNoticeReader")
            .field("head", &self.head)
            .field("read", &self.tally.count())
            .finish_non_exhaustive()
    }
}

// --- The XML -------------------------------------------------------------------------------------------------------

const CREDIT: &str = "CRDT";
const BOOKED: &str = "BOOK";

#[derive(Debug, Serialize, Deserialize)]
struct HeadDocument<'a> {
    #[serde(
        rename = "@xmlns",
        default,
        skip_serializing_if = "Option::is_none",
        borrow
    )]
    namespace: Option<Txt<'a>>,
    #[serde(rename = "BkToCstmrDbtCdtNtfctn", borrow)]
    message: MessageHead<'a>,
}

#[derive(Debug, Serialize, Deserialize)]
struct MessageHead<'a> {
    #[serde(rename = "GrpHdr", borrow)]
    group_header: GroupHeader<'a>,
    #[serde(rename = "Ntfctn", borrow)]
    notification: NotificationHead<'a>,
}

#[derive(Debug, Serialize, Deserialize)]
struct GroupHeader<'a> {
    #[serde(rename = "MsgId", borrow)]
    message_id: Txt<'a>,
    #[serde(rename = "CreDtTm", borrow)]
    created: Txt<'a>,
    /// The credit company.
    #[serde(rename = "MsgRcpt", borrow)]
    recipient: Party<'a>,
}

#[derive(Debug, Serialize, Deserialize)]
struct NotificationHead<'a> {
    #[serde(rename = "Id", borrow)]
    id: Txt<'a>,
    #[serde(rename = "Acct", borrow)]
    account: NotifiedAccount<'a>,
    #[serde(rename = "Ntry", borrow)]
    entry: EntryHead<'a>,
}

/// `CashAccount39`: the credit company's account, its currency, and the bank that services it.
#[derive(Debug, Serialize, Deserialize)]
struct NotifiedAccount<'a> {
    #[serde(rename = "Id", borrow)]
    id: OtherId<'a>,
    #[serde(
        rename = "Ccy",
        default,
        skip_serializing_if = "Option::is_none",
        borrow
    )]
    currency: Option<Txt<'a>>,
    #[serde(rename = "Svcr", borrow)]
    servicer: Agent<'a>,
}

#[derive(Debug, Serialize, Deserialize)]
struct EntryHead<'a> {
    #[serde(rename = "Amt", borrow)]
    amount: Amount<'a>,
    #[serde(rename = "CdtDbtInd", borrow)]
    credit_debit: Txt<'a>,
    #[serde(rename = "Sts", borrow)]
    status: EntryStatus<'a>,
    #[serde(rename = "BookgDt", borrow)]
    booking_date: DateChoice<'a>,
    #[serde(rename = "BkTxCd", borrow)]
    bank_transaction_code: BankTransactionCode<'a>,
    #[serde(rename = "NtryDtls", borrow)]
    details: EntryDetailsHead<'a>,
}

#[derive(Debug, Serialize, Deserialize)]
struct EntryStatus<'a> {
    #[serde(
        rename = "Cd",
        default,
        skip_serializing_if = "Option::is_none",
        borrow
    )]
    code: Option<Txt<'a>>,
}

#[derive(Debug, Serialize, Deserialize)]
struct DateChoice<'a> {
    #[serde(
        rename = "Dt",
        default,
        skip_serializing_if = "Option::is_none",
        borrow
    )]
    date: Option<Txt<'a>>,
}

#[derive(Debug, Serialize, Deserialize)]
struct BankTransactionCode<'a> {
    #[serde(
        rename = "Domn",
        default,
        skip_serializing_if = "Option::is_none",
        borrow
    )]
    domain: Option<Domain<'a>>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Domain<'a> {
    #[serde(rename = "Cd", borrow)]
    code: Txt<'a>,
    #[serde(rename = "Fmly", borrow)]
    family: Family<'a>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Family<'a> {
    #[serde(rename = "Cd", borrow)]
    code: Txt<'a>,
    #[serde(rename = "SubFmlyCd", borrow)]
    sub_family_code: Txt<'a>,
}

#[derive(Debug, Serialize, Deserialize)]
struct EntryDetailsHead<'a> {
    #[serde(rename = "Btch", borrow)]
    batch: Batch<'a>,
}

/// `BatchInformation2`: the deduction file this transfer settles, how many entries and their total.
#[derive(Debug, Serialize, Deserialize)]
struct Batch<'a> {
    #[serde(
        rename = "MsgId",
        default,
        skip_serializing_if = "Option::is_none",
        borrow
    )]
    message_id: Option<Txt<'a>>,
    #[serde(
        rename = "NbOfTxs",
        default,
        skip_serializing_if = "Option::is_none",
        borrow
    )]
    count: Option<Txt<'a>>,
    #[serde(
        rename = "TtlAmt",
        default,
        skip_serializing_if = "Option::is_none",
        borrow
    )]
    total: Option<Amount<'a>>,
    #[serde(
        rename = "CdtDbtInd",
        default,
        skip_serializing_if = "Option::is_none",
        borrow
    )]
    credit_debit: Option<Txt<'a>>,
}

/// `EntryTransaction10`.
#[derive(Debug, Serialize, Deserialize)]
struct EntryTransaction<'a> {
    #[serde(rename = "Refs", borrow)]
    references: References<'a>,
    #[serde(rename = "Amt", borrow)]
    amount: Amount<'a>,
    #[serde(rename = "CdtDbtInd", borrow)]
    credit_debit: Txt<'a>,
}

#[derive(Debug, Serialize, Deserialize)]
struct References<'a> {
    #[serde(rename = "EndToEndId", borrow)]
    end_to_end_id: Txt<'a>,
}

// --- Model → XML ---------------------------------------------------------------------------------------------------

fn check_head(head: &TransferNoticeHead) -> Result<Currency> {
    values::check_text(&head.header.message_id, "GrpHdr/MsgId", 35)?;
    values::check_unix_seconds(head.header.created_unix_seconds, "GrpHdr/CreDtTm")?;
    values::check_text(&head.credit_id, "GrpHdr/MsgRcpt/Id/OrgId/Othr/Id", 35)?;
    values::check_text(&head.bank_id, "Ntfctn/Acct/Svcr/FinInstnId/Othr/Id", 35)?;
    values::check_text(
        &head.original_message_id,
        "Ntfctn/Ntry/NtryDtls/Btch/MsgId",
        35,
    )?;
    values::check_text(&head.account, "Ntfctn/Acct/Id/Othr/Id", 34)?;
    values::check_date(head.booking_date, "Ntfctn/Ntry/BookgDt/Dt")?;
    if head.count == 0 {
        return Err(InterchangeError::NoItems(LAYOUT.description));
    }
    if head.count > MAX_COUNT {
        return Err(InterchangeError::field(COUNT_FIELD, FieldProblem::TooLarge));
    }
    values::check_amount(head.total, TOTAL_FIELD, true)?;
    Currency::from_numeric(head.currency)
}

fn head_xml(head: &TransferNoticeHead, currency: Currency) -> HeadDocument<'_> {
    let (domain, family, sub_family) = BANK_TRANSACTION_CODE;
    HeadDocument {
        namespace: Some(CAMT_054_NAMESPACE.into()),
        message: MessageHead {
            group_header: GroupHeader {
                message_id: head.header.message_id.as_str().into(),
                created: values::format_date_time(head.header.created_unix_seconds).into(),
                recipient: Party::organisation(&head.credit_id),
            },
            notification: NotificationHead {
                // One notification per message: it takes the message's id.
                id: head.header.message_id.as_str().into(),
                account: NotifiedAccount {
                    id: OtherId::new(head.account.as_str()),
                    currency: Some(currency.alphabetic.into()),
                    servicer: Agent::new(&head.bank_id),
                },
                entry: EntryHead {
                    amount: Amount::new(head.total, currency),
                    credit_debit: CREDIT.into(),
                    status: EntryStatus {
                        code: Some(BOOKED.into()),
                    },
                    booking_date: DateChoice {
                        date: Some(values::format_date(head.booking_date).into()),
                    },
                    bank_transaction_code: BankTransactionCode {
                        domain: Some(Domain {
                            code: domain.into(),
                            family: Family {
                                code: family.into(),
                                sub_family_code: sub_family.into(),
                            },
                        }),
                    },
                    details: EntryDetailsHead {
                        batch: Batch {
                            message_id: Some(head.original_message_id.as_str().into()),
                            count: Some(values::format_count(head.count).into()),
                            total: Some(Amount::new(head.total, currency)),
                            credit_debit: Some(CREDIT.into()),
                        },
                    },
                },
            },
        },
    }
}

// --- XML → model ---------------------------------------------------------------------------------------------------

fn read_head(document: &HeadDocument<'_>) -> Result<(TransferNoticeHead, Currency)> {
    let group = &document.message.group_header;
    let notification = &document.message.notification;
    let entry = &notification.entry;
    let batch = &entry.details.batch;
    let currency =
        Currency::from_alphabetic(required(&notification.account.currency, "Ntfctn/Acct/Ccy")?)?;
    values::expect_code(entry.credit_debit.as_str(), CREDIT, "Ntfctn/Ntry/CdtDbtInd")?;
    values::expect_code(
        required(&entry.status.code, "Ntfctn/Ntry/Sts/Cd")?,
        BOOKED,
        "Ntfctn/Ntry/Sts/Cd",
    )?;
    if let Some(batch_credit_debit) = &batch.credit_debit {
        values::expect_code(
            batch_credit_debit.as_str(),
            CREDIT,
            "Ntfctn/Ntry/NtryDtls/Btch/CdtDbtInd",
        )?;
    }
    values::read_text(notification.id.as_str(), "Ntfctn/Id", 35)?;
    let total = entry.amount.minor(currency, TOTAL_FIELD, true)?;
    if let Some(batch_total) = &batch.total {
        same_number(
            "Ntfctn/Ntry/NtryDtls/Btch/TtlAmt",
            total,
            batch_total.minor(currency, "Ntfctn/Ntry/NtryDtls/Btch/TtlAmt", true)?,
        )?;
    }
    let count = values::parse_count(required(&batch.count, COUNT_FIELD)?, COUNT_FIELD)?;
    if count == 0 {
        return Err(InterchangeError::NoItems(LAYOUT.description));
    }
    let head = TransferNoticeHead {
        header: Header {
            message_id: values::read_text(group.message_id.as_str(), "GrpHdr/MsgId", 35)?,
            created_unix_seconds: values::parse_date_time(
                group.created.as_str(),
                "GrpHdr/CreDtTm",
            )?,
        },
        bank_id: values::read_text(
            notification.account.servicer.id(),
            "Ntfctn/Acct/Svcr/FinInstnId/Othr/Id",
            35,
        )?,
        credit_id: values::read_text(
            group.recipient.organisation_id("GrpHdr/MsgRcpt/Id/OrgId")?,
            "GrpHdr/MsgRcpt/Id/OrgId/Othr/Id",
            35,
        )?,
        original_message_id: values::read_text(
            required(&batch.message_id, "Ntfctn/Ntry/NtryDtls/Btch/MsgId")?,
            "Ntfctn/Ntry/NtryDtls/Btch/MsgId",
            35,
        )?,
        account: values::read_text(notification.account.id.id(), "Ntfctn/Acct/Id/Othr/Id", 34)?,
        booking_date: values::parse_date(
            required(&entry.booking_date.date, "Ntfctn/Ntry/BookgDt/Dt")?,
            "Ntfctn/Ntry/BookgDt/Dt",
        )?,
        currency: currency.numeric,
        count,
        total,
    };
    Ok((head, currency))
}

fn read_entry(
    item: &Tape,
    head: &TransferNoticeHead,
    currency: Currency,
    tally: &mut Tally,
) -> Result<NoticeEntry> {
    tally.check_room(head.count, COUNT_FIELD)?;
    let item: EntryTransaction<'_> =
        item.deserialize()
            .map_err(|source| InterchangeError::Deserialize {
                element: "TxDtls",
                source,
            })?;
    values::expect_code(item.credit_debit.as_str(), CREDIT, "TxDtls/CdtDbtInd")?;
    let entry = NoticeEntry {
        end_to_end_id: values::read_text(
            item.references.end_to_end_id.as_str(),
            "TxDtls/Refs/EndToEndId",
            35,
        )?,
        amount: item.amount.minor(currency, "TxDtls/Amt", true)?,
    };
    tally.add(&entry.end_to_end_id, entry.amount, TOTAL_FIELD)?;
    Ok(entry)
}
