//! The bank's answer to a deduction file (bank → credit company) as `pain.002.001.10`, customer payment status
//! report: one `TxInfAndSts` per deduction, with the settlement split in our own namespace inside its
//! `SplmtryData/Envlp`.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use crate::deduction::PAIN_008_MESSAGE_NAME;
use crate::error::{FieldProblem, InterchangeError, Result};
use crate::tally::Tally;
use crate::tape::Tape;
use crate::values::{self, Currency, MAX_AMOUNT, MAX_COUNT};
use crate::xml::{
    Agent, Amount, DocumentWriter, ItemStream, Layout, Party, SETTLEMENT_NAMESPACE, Txt, required,
};
use crate::{
    DeductionStatus, Header, ReasonCode, StatusReport, TokenConfirmation, TransactionStatus,
};

/// The XML namespace of the status report.
pub const PAIN_002_NAMESPACE: &str = "urn:iso:std:iso:20022:tech:xsd:pain.002.001.10";

static LAYOUT: Layout = Layout {
    namespace: PAIN_002_NAMESPACE,
    path: &["Document", "CstmrPmtStsRpt", "OrgnlPmtInfAndSts"],
    item: "TxInfAndSts",
    description: "status report (pain.002)",
};

const COUNT_FIELD: &str = "OrgnlGrpInfAndSts/OrgnlNbOfTxs";
const SUM_FIELD: &str = "OrgnlGrpInfAndSts/OrgnlCtrlSum";
const DUE_FIELD: &str = "TxInfAndSts/OrgnlTxRef/Amt/InstdAmt";
const POOL_FIELD: &str = "TxInfAndSts/SplmtryData/Envlp/Sttlm/FrPool";
const PERSONAL_FIELD: &str = "TxInfAndSts/SplmtryData/Envlp/Sttlm/FrPrsnlAcct";
const TOKEN_FIELD: &str = "TxInfAndSts/SplmtryData/Envlp/Sttlm/Tkn";

/// Everything a status report says before its statuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReportHead {
    pub header: Header,
    pub bank_id: String,
    pub credit_id: String,
    pub original_message_id: String,
    /// ISO 4217 numeric.
    pub currency: u16,
    /// How many statuses follow (`OrgnlNbOfTxs`), at least one.
    pub count: u64,
    /// The sum of their `due` in minor units (`OrgnlCtrlSum`, the deduction file's control sum when the report
    /// answers every deduction).
    pub control_sum: u64,
}

impl StatusReport {
    /// The report's head, with the count of its statuses and the sum of what they were due.
    pub fn head(&self) -> Result<StatusReportHead> {
        let control_sum = self
            .statuses
            .iter()
            .try_fold(0u64, |sum, status| {
                sum.checked_add(status.due).filter(|sum| *sum <= MAX_AMOUNT)
            })
            .ok_or(InterchangeError::field(SUM_FIELD, FieldProblem::TooLarge))?;
        Ok(StatusReportHead {
            header: self.header.clone(),
            bank_id: self.bank_id.clone(),
            credit_id: self.credit_id.clone(),
            original_message_id: self.original_message_id.clone(),
            currency: self.currency,
            count: u64::try_from(self.statuses.len()).unwrap_or(u64::MAX),
            control_sum,
        })
    }

    /// Writes the whole report as pain.002 XML to `out` and gives `out` back.
    pub fn write_xml<W: Write>(&self, out: W) -> Result<W> {
        let mut writer = StatusReportWriter::new(out, &self.head()?)?;
        for status in &self.statuses {
            writer.write(status)?;
        }
        writer.finish()
    }

    /// The whole report as pain.002 XML.
    pub fn to_xml(&self) -> Result<Vec<u8>> {
        self.write_xml(Vec::new())
    }

    /// Reads a whole pain.002 report (for large files, [`StatusReportReader`] reads one status at a time).
    pub fn from_xml(xml: &[u8]) -> Result<Self> {
        let mut reader = StatusReportReader::new(xml)?;
        let statuses = reader.by_ref().collect::<Result<Vec<_>>>()?;
        let head = reader.head;
        Ok(Self {
            header: head.header,
            bank_id: head.bank_id,
            credit_id: head.credit_id,
            original_message_id: head.original_message_id,
            currency: head.currency,
            statuses,
        })
    }
}

/// Writes a pain.002 report one status at a time; [`Self::finish`] checks the count and sum the head promised.
pub struct StatusReportWriter<W: Write> {
    document: DocumentWriter<W>,
    head: StatusReportHead,
    currency: Currency,
    tally: Tally,
}

impl<W: Write> StatusReportWriter<W> {
    /// Checks `head` and writes it.
    pub fn new(out: W, head: &StatusReportHead) -> Result<Self> {
        let currency = check_head(head)?;
        let document = DocumentWriter::start(out, &LAYOUT, &head_xml(head, currency))?;
        Ok(Self {
            document,
            head: head.clone(),
            currency,
            tally: Tally::new(head.count),
        })
    }

    /// Checks and writes one status; a refused status leaves the output as it was.
    pub fn write(&mut self, status: &DeductionStatus) -> Result<()> {
        let index = self.tally.count() + 1;
        self.write_item(status)
            .map_err(|error| error.in_item(index))
    }

    fn write_item(&mut self, status: &DeductionStatus) -> Result<()> {
        self.tally.check_room(self.head.count, COUNT_FIELD)?;
        check_status(status)?;
        self.document
            .serialize_item(&item_xml(status, self.currency))?;
        self.tally
            .add(&status.end_to_end_id, status.due, SUM_FIELD)?;
        self.document.commit_item()
    }

    /// Closes the document once the promised count and sum were written; gives the output back.
    pub fn finish(self) -> Result<W> {
        self.tally.check_totals(
            (COUNT_FIELD, self.head.count),
            (SUM_FIELD, self.head.control_sum),
        )?;
        self.document.finish()
    }
}

impl<W: Write> core::fmt::Debug for StatusReportWriter<W> {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter
            .debug_struct("StatusReportWriter")
            .field("head", &self.head)
            .field("written", &self.tally.count())
            .finish_non_exhaustive()
    }
}

/// Reads a pain.002 report: [`Self::head`], then the statuses one at a time as an iterator, whose last item is
/// an error if `OrgnlNbOfTxs` or `OrgnlCtrlSum` disagree with the statuses. The report's currency is that of
/// its amounts (pain.002 has no group currency), so the first status is read with the head.
pub struct StatusReportReader<R: BufRead> {
    stream: ItemStream<R>,
    head: StatusReportHead,
    currency: Currency,
    tally: Tally,
    first: Option<DeductionStatus>,
    done: bool,
}

impl<R: BufRead> StatusReportReader<R> {
    /// Reads and checks the head and the first status.
    pub fn new(input: R) -> Result<Self> {
        let (mut stream, head_text) = ItemStream::open(input, &LAYOUT)?;
        let document: HeadDocument<'_> = quick_xml::de::from_str(&head_text).map_err(|source| {
            InterchangeError::Deserialize {
                element: "Document",
                source,
            }
        })?;
        let first_text = stream
            .next_item()?
            .ok_or(InterchangeError::NoItems(LAYOUT.description))?;
        let first = parse_item(first_text).map_err(|error| error.in_item(1))?;
        let currency_code = first
            .amount()
            .map_err(|error| error.in_item(1))?
            .currency
            .as_str();
        let currency =
            Currency::from_alphabetic(currency_code).map_err(|error| error.in_item(1))?;
        let head = read_head(&document, currency)?;
        let mut tally = Tally::new(head.count);
        let first =
            read_status(&first, &head, currency, &mut tally).map_err(|error| error.in_item(1))?;
        Ok(Self {
            stream,
            head,
            currency,
            tally,
            first: Some(first),
            done: false,
        })
    }

    pub fn head(&self) -> &StatusReportHead {
        &self.head
    }

    fn read_next(&mut self) -> Result<Option<DeductionStatus>> {
        if let Some(first) = self.first.take() {
            return Ok(Some(first));
        }
        let index = self.tally.count() + 1;
        let Some(xml) = self.stream.next_item()? else {
            self.tally.check_totals(
                (COUNT_FIELD, self.head.count),
                (SUM_FIELD, self.head.control_sum),
            )?;
            return Ok(None);
        };
        parse_item(xml)
            .and_then(|item| read_status(&item, &self.head, self.currency, &mut self.tally))
            .map(Some)
            .map_err(|error| error.in_item(index))
    }
}

impl<R: BufRead> Iterator for StatusReportReader<R> {
    type Item = Result<DeductionStatus>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = self.read_next().transpose();
        self.done = !matches!(next, Some(Ok(_)));
        next
    }
}

impl<R: BufRead> core::fmt::Debug for StatusReportReader<R> {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter
            .debug_struct("StatusReportReader")
            .field("head", &self.head)
            .field("read", &self.tally.count())
            .finish_non_exhaustive()
    }
}

// --- The XML -------------------------------------------------------------------------------------------------------

#[derive(Debug, Serialize, Deserialize)]
struct HeadDocument<'a> {
    #[serde(
        rename = "@xmlns",
        default,
        skip_serializing_if = "Option::is_none",
        borrow
    )]
    namespace: Option<Txt<'a>>,
    #[serde(rename = "CstmrPmtStsRpt", borrow)]
    report: ReportHead<'a>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ReportHead<'a> {
    #[serde(rename = "GrpHdr", borrow)]
    group_header: GroupHeader<'a>,
    #[serde(rename = "OrgnlGrpInfAndSts", borrow)]
    original_group: OriginalGroup<'a>,
    /// Last: the statuses follow its fields.
    #[serde(rename = "OrgnlPmtInfAndSts", borrow)]
    original_payment: OriginalPayment<'a>,
}

#[derive(Debug, Serialize, Deserialize)]
struct GroupHeader<'a> {
    #[serde(rename = "MsgId", borrow)]
    message_id: Txt<'a>,
    #[serde(rename = "CreDtTm", borrow)]
    created: Txt<'a>,
    /// The credit company, which initiated the collections reported on.
    #[serde(rename = "InitgPty", borrow)]
    initiating_party: Party<'a>,
    /// The bank, the creditor's agent, which reports.
    #[serde(rename = "CdtrAgt", borrow)]
    creditor_agent: Agent<'a>,
}

#[derive(Debug, Serialize, Deserialize)]
struct OriginalGroup<'a> {
    #[serde(rename = "OrgnlMsgId", borrow)]
    message_id: Txt<'a>,
    #[serde(rename = "OrgnlMsgNmId", borrow)]
    message_name: Txt<'a>,
    #[serde(
        rename = "OrgnlNbOfTxs",
        default,
        skip_serializing_if = "Option::is_none",
        borrow
    )]
    count: Option<Txt<'a>>,
    #[serde(
        rename = "OrgnlCtrlSum",
        default,
        skip_serializing_if = "Option::is_none",
        borrow
    )]
    control_sum: Option<Txt<'a>>,
}

#[derive(Debug, Serialize, Deserialize)]
struct OriginalPayment<'a> {
    #[serde(rename = "OrgnlPmtInfId", borrow)]
    payment_id: Txt<'a>,
}

/// `PaymentTransaction105`.
#[derive(Debug, Serialize, Deserialize)]
struct TransactionStatusXml<'a> {
    #[serde(
        rename = "OrgnlEndToEndId",
        default,
        skip_serializing_if = "Option::is_none",
        borrow
    )]
    end_to_end_id: Option<Txt<'a>>,
    #[serde(
        rename = "TxSts",
        default,
        skip_serializing_if = "Option::is_none",
        borrow
    )]
    status: Option<Txt<'a>>,
    #[serde(
        rename = "StsRsnInf",
        default,
        skip_serializing_if = "Option::is_none",
        borrow
    )]
    reason: Option<StatusReason<'a>>,
    #[serde(
        rename = "OrgnlTxRef",
        default,
        skip_serializing_if = "Option::is_none",
        borrow
    )]
    original: Option<OriginalReference<'a>>,
    #[serde(
        rename = "SplmtryData",
        default,
        skip_serializing_if = "Option::is_none",
        borrow
    )]
    supplementary: Option<Supplementary<'a>>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StatusReason<'a> {
    #[serde(rename = "Rsn", borrow)]
    reason: ReasonChoice<'a>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ReasonChoice<'a> {
    #[serde(
        rename = "Cd",
        default,
        skip_serializing_if = "Option::is_none",
        borrow
    )]
    code: Option<Txt<'a>>,
}

#[derive(Debug, Serialize, Deserialize)]
struct OriginalReference<'a> {
    #[serde(rename = "Amt", borrow)]
    amount: OriginalAmount<'a>,
}

#[derive(Debug, Serialize, Deserialize)]
struct OriginalAmount<'a> {
    #[serde(rename = "InstdAmt", borrow)]
    instructed: Amount<'a>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Supplementary<'a> {
    #[serde(rename = "Envlp", borrow)]
    envelope: Envelope<'a>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "Sttlm", borrow)]
    settlement: Settlement<'a>,
}

/// `Sttlm` in [`SETTLEMENT_NAMESPACE`]: where the collected sum came from, and each token's answer.
#[derive(Debug, Serialize, Deserialize)]
struct Settlement<'a> {
    #[serde(
        rename = "@xmlns",
        default,
        skip_serializing_if = "Option::is_none",
        borrow
    )]
    namespace: Option<Txt<'a>>,
    #[serde(rename = "FrPool", borrow)]
    from_pool: Txt<'a>,
    #[serde(rename = "FrPrsnlAcct", borrow)]
    from_personal: Txt<'a>,
    #[serde(rename = "Tkn", default, borrow)]
    tokens: TokenAnswers<'a>,
}

#[derive(Debug, Serialize, Deserialize)]
struct TokenAnswer<'a> {
    #[serde(rename = "Id", borrow)]
    id: Txt<'a>,
    #[serde(rename = "Cnfrmd", borrow)]
    confirmed: Txt<'a>,
    #[serde(rename = "Drwn", borrow)]
    drawn: Txt<'a>,
    #[serde(rename = "Rmng", borrow)]
    remaining: Txt<'a>,
}

/// The token answers of a status: written straight from the model, read as they come.
#[derive(Debug)]
enum TokenAnswers<'a> {
    Write(&'a [TokenConfirmation], Currency),
    Read(Vec<TokenAnswer<'a>>),
}

impl Default for TokenAnswers<'_> {
    fn default() -> Self {
        Self::Read(Vec::new())
    }
}

impl Serialize for TokenAnswers<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Write(tokens, currency) => {
                serializer.collect_seq(tokens.iter().map(|token| TokenAnswer {
                    id: values::format_token_id(&token.token_id).into(),
                    confirmed: if token.confirmed { "true" } else { "false" }.into(),
                    drawn: values::format_amount(token.drawn, *currency).into(),
                    remaining: values::format_amount(token.remaining, *currency).into(),
                }))
            }
            Self::Read(answers) => answers.serialize(serializer),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for TokenAnswers<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::deserialize(deserializer).map(Self::Read)
    }
}

impl TransactionStatusXml<'_> {
    fn amount(&self) -> Result<&Amount<'_>> {
        self.original
            .as_ref()
            .map(|original| &original.amount.instructed)
            .ok_or(InterchangeError::field(DUE_FIELD, FieldProblem::Missing))
    }
}

fn status_code(status: TransactionStatus) -> &'static str {
    match status {
        TransactionStatus::Accepted => "ACSC",
        TransactionStatus::Partial => "PART",
        TransactionStatus::Rejected => "RJCT",
    }
}

fn reason_code(reason: ReasonCode) -> &'static str {
    match reason {
        ReasonCode::InsufficientFunds => "AM04",
        ReasonCode::IncorrectAccount => "AC01",
        ReasonCode::NoMandate => "MD01",
        ReasonCode::Duplicate => "AM05",
    }
}

// --- Model → XML ---------------------------------------------------------------------------------------------------

fn check_head(head: &StatusReportHead) -> Result<Currency> {
    values::check_text(&head.header.message_id, "GrpHdr/MsgId", 35)?;
    values::check_unix_seconds(head.header.created_unix_seconds, "GrpHdr/CreDtTm")?;
    values::check_text(&head.credit_id, "GrpHdr/InitgPty/Id/OrgId/Othr/Id", 35)?;
    values::check_text(&head.bank_id, "GrpHdr/CdtrAgt/FinInstnId/Othr/Id", 35)?;
    values::check_text(
        &head.original_message_id,
        "OrgnlGrpInfAndSts/OrgnlMsgId",
        35,
    )?;
    if head.count == 0 {
        return Err(InterchangeError::NoItems(LAYOUT.description));
    }
    if head.count > MAX_COUNT {
        return Err(InterchangeError::field(COUNT_FIELD, FieldProblem::TooLarge));
    }
    values::check_amount(head.control_sum, SUM_FIELD, true)?;
    Currency::from_numeric(head.currency)
}

fn head_xml(head: &StatusReportHead, currency: Currency) -> HeadDocument<'_> {
    HeadDocument {
        namespace: Some(PAIN_002_NAMESPACE.into()),
        report: ReportHead {
            group_header: GroupHeader {
                message_id: head.header.message_id.as_str().into(),
                created: values::format_date_time(head.header.created_unix_seconds).into(),
                initiating_party: Party::organisation(&head.credit_id),
                creditor_agent: Agent::new(&head.bank_id),
            },
            original_group: OriginalGroup {
                message_id: head.original_message_id.as_str().into(),
                message_name: PAIN_008_MESSAGE_NAME.into(),
                count: Some(values::format_count(head.count).into()),
                control_sum: Some(values::format_amount(head.control_sum, currency).into()),
            },
            // The deduction file's single payment information block carries the file's message id.
            original_payment: OriginalPayment {
                payment_id: head.original_message_id.as_str().into(),
            },
        },
    }
}

/// The model's rules the XML cannot express: amounts within bounds, a reason exactly when not accepted, what was
/// collected matching the status, and no draw on an unconfirmed token.
fn check_status(status: &DeductionStatus) -> Result<()> {
    values::check_text(&status.end_to_end_id, "TxInfAndSts/OrgnlEndToEndId", 35)?;
    values::check_amount(status.due, DUE_FIELD, true)?;
    values::check_amount(status.from_pool, POOL_FIELD, false)?;
    values::check_amount(status.from_personal, PERSONAL_FIELD, false)?;
    for token in &status.tokens {
        values::check_amount(
            token.drawn,
            "TxInfAndSts/SplmtryData/Envlp/Sttlm/Tkn/Drwn",
            false,
        )?;
        values::check_amount(
            token.remaining,
            "TxInfAndSts/SplmtryData/Envlp/Sttlm/Tkn/Rmng",
            false,
        )?;
        if !token.confirmed && token.drawn != 0 {
            return Err(inconsistent(status, "an unconfirmed token cannot be drawn"));
        }
    }
    let collected = status
        .from_pool
        .checked_add(status.from_personal)
        .filter(|collected| *collected <= status.due);
    let collected = collected.ok_or_else(|| inconsistent(status, "more collected than due"))?;
    let problem = match (status.status, status.reason) {
        (TransactionStatus::Accepted, Some(_)) => Some("an accepted deduction has no reason"),
        (TransactionStatus::Accepted, None) if collected != status.due => {
            Some("accepted but not collected in full")
        }
        (TransactionStatus::Partial | TransactionStatus::Rejected, None) => {
            Some("a partial or rejected deduction needs a reason")
        }
        (TransactionStatus::Partial, Some(_)) if collected == 0 || collected == status.due => {
            Some("partial but collected nothing or everything")
        }
        (TransactionStatus::Rejected, Some(_)) if collected != 0 => {
            Some("rejected but something was collected")
        }
        _ => None,
    };
    problem.map_or(Ok(()), |problem| Err(inconsistent(status, problem)))
}

fn inconsistent(status: &DeductionStatus, problem: &'static str) -> InterchangeError {
    InterchangeError::InconsistentStatus {
        end_to_end_id: status.end_to_end_id.clone(),
        problem,
    }
}

/// A status ready to serialize.
struct StatusItem<'a> {
    status: &'a DeductionStatus,
    currency: Currency,
}

fn item_xml(status: &DeductionStatus, currency: Currency) -> StatusItem<'_> {
    StatusItem { status, currency }
}

impl Serialize for StatusItem<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let status = self.status;
        TransactionStatusXml {
            end_to_end_id: Some(status.end_to_end_id.as_str().into()),
            status: Some(status_code(status.status).into()),
            reason: status.reason.map(|reason| StatusReason {
                reason: ReasonChoice {
                    code: Some(reason_code(reason).into()),
                },
            }),
            original: Some(OriginalReference {
                amount: OriginalAmount {
                    instructed: Amount::new(status.due, self.currency),
                },
            }),
            supplementary: Some(Supplementary {
                envelope: Envelope {
                    settlement: Settlement {
                        namespace: Some(SETTLEMENT_NAMESPACE.into()),
                        from_pool: values::format_amount(status.from_pool, self.currency).into(),
                        from_personal: values::format_amount(status.from_personal, self.currency)
                            .into(),
                        tokens: TokenAnswers::Write(&status.tokens, self.currency),
                    },
                },
            }),
        }
        .serialize(serializer)
    }
}

// --- XML → model ---------------------------------------------------------------------------------------------------

fn read_head(document: &HeadDocument<'_>, currency: Currency) -> Result<StatusReportHead> {
    let report = &document.report;
    let original = &report.original_group;
    values::expect_code(
        original.message_name.as_str(),
        PAIN_008_MESSAGE_NAME,
        "OrgnlGrpInfAndSts/OrgnlMsgNmId",
    )?;
    let count = values::parse_count(required(&original.count, COUNT_FIELD)?, COUNT_FIELD)?;
    if count == 0 {
        return Err(InterchangeError::NoItems(LAYOUT.description));
    }
    let control_sum = values::parse_amount(
        required(&original.control_sum, SUM_FIELD)?,
        currency,
        SUM_FIELD,
        true,
    )?;
    let group = &report.group_header;
    Ok(StatusReportHead {
        header: Header {
            message_id: values::read_text(group.message_id.as_str(), "GrpHdr/MsgId", 35)?,
            created_unix_seconds: values::parse_date_time(
                group.created.as_str(),
                "GrpHdr/CreDtTm",
            )?,
        },
        bank_id: values::read_text(
            group.creditor_agent.id(),
            "GrpHdr/CdtrAgt/FinInstnId/Othr/Id",
            35,
        )?,
        credit_id: values::read_text(
            group
                .initiating_party
                .organisation_id("GrpHdr/InitgPty/Id/OrgId")?,
            "GrpHdr/InitgPty/Id/OrgId/Othr/Id",
            35,
        )?,
        original_message_id: values::read_text(
            original.message_id.as_str(),
            "OrgnlGrpInfAndSts/OrgnlMsgId",
            35,
        )?,
        currency: currency.numeric,
        count,
        control_sum,
    })
}

fn parse_item(item: &Tape) -> Result<TransactionStatusXml<'_>> {
    item.deserialize()
        .map_err(|source| InterchangeError::Deserialize {
            element: "TxInfAndSts",
            source,
        })
}

fn read_status(
    item: &TransactionStatusXml<'_>,
    head: &StatusReportHead,
    currency: Currency,
    tally: &mut Tally,
) -> Result<DeductionStatus> {
    tally.check_room(head.count, COUNT_FIELD)?;
    let settlement = item
        .supplementary
        .as_ref()
        .map(|supplementary| &supplementary.envelope.settlement)
        .ok_or(InterchangeError::field(
            "TxInfAndSts/SplmtryData/Envlp/Sttlm",
            FieldProblem::Missing,
        ))?;
    let end_to_end_id = required(&item.end_to_end_id, "TxInfAndSts/OrgnlEndToEndId")?;
    let status = DeductionStatus {
        end_to_end_id: values::read_text(end_to_end_id, "TxInfAndSts/OrgnlEndToEndId", 35)?,
        status: read_transaction_status(required(&item.status, "TxInfAndSts/TxSts")?)?,
        reason: item.reason.as_ref().map(read_reason).transpose()?,
        due: item.amount()?.minor(currency, DUE_FIELD, true)?,
        from_pool: values::parse_amount(
            settlement.from_pool.as_str(),
            currency,
            POOL_FIELD,
            false,
        )?,
        from_personal: values::parse_amount(
            settlement.from_personal.as_str(),
            currency,
            PERSONAL_FIELD,
            false,
        )?,
        tokens: read_token_answers(&settlement.tokens, currency)?,
    };
    check_status(&status)?;
    tally.add(&status.end_to_end_id, status.due, SUM_FIELD)?;
    Ok(status)
}

fn read_transaction_status(code: &str) -> Result<TransactionStatus> {
    match code {
        "ACSC" => Ok(TransactionStatus::Accepted),
        "PART" => Ok(TransactionStatus::Partial),
        "RJCT" => Ok(TransactionStatus::Rejected),
        other => Err(InterchangeError::field(
            "TxInfAndSts/TxSts",
            FieldProblem::UnknownCode(other.to_owned()),
        )),
    }
}

fn read_reason(reason: &StatusReason<'_>) -> Result<ReasonCode> {
    const FIELD: &str = "TxInfAndSts/StsRsnInf/Rsn/Cd";
    match required(&reason.reason.code, FIELD)? {
        "AM04" => Ok(ReasonCode::InsufficientFunds),
        "AC01" => Ok(ReasonCode::IncorrectAccount),
        "MD01" => Ok(ReasonCode::NoMandate),
        "AM05" => Ok(ReasonCode::Duplicate),
        other => Err(InterchangeError::field(
            FIELD,
            FieldProblem::UnknownCode(other.to_owned()),
        )),
    }
}

fn read_token_answers(
    answers: &TokenAnswers<'_>,
    currency: Currency,
) -> Result<Vec<TokenConfirmation>> {
    let TokenAnswers::Read(answers) = answers else {
        return Err(InterchangeError::field(TOKEN_FIELD, FieldProblem::Missing));
    };
    answers
        .iter()
        .map(|answer| {
            Ok(TokenConfirmation {
                token_id: values::parse_token_id(
                    answer.id.as_str(),
                    "TxInfAndSts/SplmtryData/Envlp/Sttlm/Tkn/Id",
                )?,
                confirmed: values::parse_bool(
                    answer.confirmed.as_str(),
                    "TxInfAndSts/SplmtryData/Envlp/Sttlm/Tkn/Cnfrmd",
                )?,
                drawn: values::parse_amount(
                    answer.drawn.as_str(),
                    currency,
                    "TxInfAndSts/SplmtryData/Envlp/Sttlm/Tkn/Drwn",
                    false,
                )?,
                remaining: values::parse_amount(
                    answer.remaining.as_str(),
                    currency,
                    "TxInfAndSts/SplmtryData/Envlp/Sttlm/Tkn/Rmng",
                    false,
                )?,
            })
        })
        .collect()
}
