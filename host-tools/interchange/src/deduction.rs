//! Deduction data (credit company → bank) as `pain.008.001.08`, customer direct debit initiation: one payment
//! information block (`PmtInf`) whose direct debit transactions (`DrctDbtTxInf`) are the users' deductions.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use crate::error::{FieldProblem, InterchangeError, Result};
use crate::tally::Tally;
use crate::tape::Tape;
use crate::values::{self, Currency, MAX_AMOUNT, MAX_COUNT, same_number, same_text};
use crate::xml::{
    Account, Agent, Amount, DocumentWriter, ItemBody, ItemStream, Layout, Party, Txt, item_text,
    required,
};
use crate::{Date, Deduction, DeductionFile, Header};

/// The XML namespace of the deduction file.
pub const PAIN_008_NAMESPACE: &str = "urn:iso:std:iso:20022:tech:xsd:pain.008.001.08";
/// The message name the status report refers to (`OrgnlMsgNmId`).
pub const PAIN_008_MESSAGE_NAME: &str = "pain.008.001.08";
/// `RfrdDocInf/Tp/CdOrPrtry/Prtry` of a referred document that is a payment token; its `Nb` is the token id.
pub const TOKEN_DOCUMENT_TYPE: &str = "LCTOKEN";

static LAYOUT: Layout = Layout {
    namespace: PAIN_008_NAMESPACE,
    path: &["Document", "CstmrDrctDbtInitn", "PmtInf"],
    item: "DrctDbtTxInf",
    description: "deduction file (pain.008)",
};

const COUNT_FIELD: &str = "GrpHdr/NbOfTxs";
const SUM_FIELD: &str = "GrpHdr/CtrlSum";

/// Everything a deduction file says before its deductions: what [`DeductionWriter`] needs up front and
/// [`DeductionReader::head`] gives first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeductionFileHead {
    pub header: Header,
    pub credit_id: String,
    pub bank_id: String,
    pub creditor_account: String,
    pub collection_date: Date,
    /// ISO 4217 numeric.
    pub currency: u16,
    /// How many deductions follow (`NbOfTxs`), at least one.
    pub count: u64,
    /// The sum of their amounts in minor units (`CtrlSum`).
    pub control_sum: u64,
}

impl DeductionFile {
    /// The file's head, with the count and control sum of its deductions.
    pub fn head(&self) -> Result<DeductionFileHead> {
        let control_sum = self
            .deductions
            .iter()
            .try_fold(0u64, |sum, deduction| {
                sum.checked_add(deduction.amount)
                    .filter(|sum| *sum <= MAX_AMOUNT)
            })
            .ok_or(InterchangeError::field(SUM_FIELD, FieldProblem::TooLarge))?;
        Ok(DeductionFileHead {
            header: self.header.clone(),
            credit_id: self.credit_id.clone(),
            bank_id: self.bank_id.clone(),
            creditor_account: self.creditor_account.clone(),
            collection_date: self.collection_date,
            currency: self.currency,
            count: u64::try_from(self.deductions.len()).unwrap_or(u64::MAX),
            control_sum,
        })
    }

    /// Writes the whole file as pain.008 XML to `out` and gives `out` back.
    pub fn write_xml<W: Write>(&self, out: W) -> Result<W> {
        let mut writer = DeductionWriter::new(out, &self.head()?)?;
        for deduction in &self.deductions {
            writer.write(deduction)?;
        }
        writer.finish()
    }

    /// The whole file as pain.008 XML.
    pub fn to_xml(&self) -> Result<Vec<u8>> {
        self.write_xml(Vec::new())
    }

    /// Reads a whole pain.008 file (for large files, [`DeductionReader`] reads one deduction at a time).
    pub fn from_xml(xml: &[u8]) -> Result<Self> {
        let mut reader = DeductionReader::new(xml)?;
        let deductions = reader.by_ref().collect::<Result<Vec<_>>>()?;
        let head = reader.head;
        Ok(Self {
            header: head.header,
            credit_id: head.credit_id,
            bank_id: head.bank_id,
            creditor_account: head.creditor_account,
            collection_date: head.collection_date,
            currency: head.currency,
            deductions,
        })
    }
}

/// Writes a pain.008 file one deduction at a time; [`Self::finish`] checks the count and sum the head promised.
pub struct DeductionWriter<W: Write> {
    document: DocumentWriter<W>,
    head: DeductionFileHead,
    currency: Currency,
    tally: Tally,
    text: String,
}

impl<W: Write> DeductionWriter<W> {
    /// Checks `head` and writes it.
    pub fn new(out: W, head: &DeductionFileHead) -> Result<Self> {
        let currency = check_head(head)?;
        let document = DocumentWriter::start(out, &LAYOUT, &head_xml(head, currency))?;
        Ok(Self {
            document,
            head: head.clone(),
            currency,
            tally: Tally::new(head.count),
            text: String::with_capacity(4096),
        })
    }

    /// Checks and writes one deduction; a refused deduction leaves the output as it was.
    pub fn write(&mut self, deduction: &Deduction) -> Result<()> {
        let index = self.tally.count() + 1;
        self.write_item(deduction)
            .map_err(|error| error.in_item(index))
    }

    fn write_item(&mut self, deduction: &Deduction) -> Result<()> {
        let (bank_id, currency) = (self.head.bank_id.as_str(), self.currency);
        let count = (&mut self.tally, self.head.count);
        prepare_item(deduction, bank_id, currency, count, &mut self.text)?;
        self.document.put_items(&mut self.text.as_bytes())
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

impl<W: Write> DeductionWriter<W> {
    /// Writes a whole file from deductions written before their head was known ([`DeductionBody`]): the head,
    /// then the body as it is; refused unless the body is of the head's bank and currency and holds the count and
    /// sum the head declares.
    pub fn with_body(out: W, head: &DeductionFileHead, body: DeductionBody) -> Result<W> {
        let currency = check_head(head)?;
        if body.bank_id != head.bank_id {
            return Err(InterchangeError::Mismatch {
                field: "the deductions' creditor agent",
                expected_from: "PmtInf/CdtrAgt",
                expected: head.bank_id.clone(),
                found: body.bank_id,
            });
        }
        let currency_field = ("the deductions' currency", "PmtInf/CdtrAcct/Ccy");
        body.body.check_currency(currency, currency_field)?;
        let totals = |tally: &Tally| {
            tally.check_totals((COUNT_FIELD, head.count), (SUM_FIELD, head.control_sum))
        };
        DocumentWriter::with_body(out, (&LAYOUT, &head_xml(head, currency)), body.body, totals)
    }
}

/// A deduction file's deductions, written before its head is known: a statement learns its count and sum only
/// once it has looked at every cardholder, and writes their deductions meanwhile (on another core). Each is
/// checked and kept as XML in an anonymous temporary file; [`DeductionWriter::with_body`] writes the file.
pub struct DeductionBody {
    body: ItemBody,
    bank_id: String,
}

impl DeductionBody {
    /// An empty body for a file to bank `bank_id`, in `currency` (ISO 4217 numeric).
    pub fn new(bank_id: &str, currency: u16) -> Result<Self> {
        Ok(Self {
            body: ItemBody::new(currency)?,
            bank_id: bank_id.to_owned(),
        })
    }

    /// Checks and writes one deduction; a refused one leaves the body as it was.
    pub fn write(&mut self, deduction: &Deduction) -> Result<()> {
        let index = self.body.tally.count() + 1;
        self.write_item(deduction)
            .map_err(|error| error.in_item(index))
    }

    fn write_item(&mut self, deduction: &Deduction) -> Result<()> {
        let body = &mut self.body;
        let count = (&mut body.tally, MAX_COUNT);
        prepare_item(
            deduction,
            &self.bank_id,
            body.currency,
            count,
            &mut body.text,
        )?;
        body.commit_item()
    }

    /// How many deductions it holds.
    pub fn count(&self) -> u64 {
        self.body.tally.count()
    }
}

/// What both deduction writers do before a deduction reaches their output: check it, count it against `room` (and
/// its end-to-end id against those counted before), and serialize it into `text`.
fn prepare_item(
    deduction: &Deduction,
    bank_id: &str,
    currency: Currency,
    (tally, room): (&mut Tally, u64),
    text: &mut String,
) -> Result<()> {
    tally.check_room(room, COUNT_FIELD)?;
    check_deduction(deduction)?;
    item_text(LAYOUT.item, &item_xml(deduction, bank_id, currency), text)?;
    tally.add(&deduction.end_to_end_id, deduction.amount, SUM_FIELD)
}

impl core::fmt::Debug for DeductionBody {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter
            .debug_struct("DeductionBody")
            .field("bank_id", &self.bank_id)
            .field("written", &self.body.tally.count())
            .finish_non_exhaustive()
    }
}

impl<W: Write> core::fmt::Debug for DeductionWriter<W> {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter
            .debug_struct("DeductionWriter")
            .field("head", &self.head)
            .field("written", &self.tally.count())
            .finish_non_exhaustive()
    }
}

/// Reads a pain.008 file: [`Self::head`], then the deductions one at a time as an iterator. The iterator's last
/// item is an error if the file's `NbOfTxs` or `CtrlSum` disagree with its deductions; it stops after an error.
pub struct DeductionReader<R: BufRead> {
    stream: ItemStream<R>,
    head: DeductionFileHead,
    currency: Currency,
    tally: Tally,
    done: bool,
}

impl<R: BufRead> DeductionReader<R> {
    /// Reads and checks the head (and the first deduction's XML).
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

    pub fn head(&self) -> &DeductionFileHead {
        &self.head
    }

    fn read_next(&mut self) -> Result<Option<Deduction>> {
        let index = self.tally.count() + 1;
        let Some(xml) = self.stream.next_item()? else {
            self.tally.check_totals(
                (COUNT_FIELD, self.head.count),
                (SUM_FIELD, self.head.control_sum),
            )?;
            return Ok(None);
        };
        read_deduction(xml, &self.head, self.currency, &mut self.tally)
            .map(Some)
            .map_err(|error| error.in_item(index))
    }
}

impl<R: BufRead> Iterator for DeductionReader<R> {
    type Item = Result<Deduction>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = self.read_next().transpose();
        self.done = !matches!(next, Some(Ok(_)));
        next
    }
}

impl<R: BufRead> core::fmt::Debug for DeductionReader<R> {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter
            .debug_struct("DeductionReader")
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
    #[serde(rename = "CstmrDrctDbtInitn", borrow)]
    initiation: InitiationHead<'a>,
}

#[derive(Debug, Serialize, Deserialize)]
struct InitiationHead<'a> {
    #[serde(rename = "GrpHdr", borrow)]
    group_header: GroupHeader<'a>,
    /// Last: the deductions follow its fields.
    #[serde(rename = "PmtInf", borrow)]
    payment: PaymentHead<'a>,
}

#[derive(Debug, Serialize, Deserialize)]
struct GroupHeader<'a> {
    #[serde(rename = "MsgId", borrow)]
    message_id: Txt<'a>,
    #[serde(rename = "CreDtTm", borrow)]
    created: Txt<'a>,
    #[serde(rename = "NbOfTxs", borrow)]
    count: Txt<'a>,
    #[serde(
        rename = "CtrlSum",
        default,
        skip_serializing_if = "Option::is_none",
        borrow
    )]
    control_sum: Option<Txt<'a>>,
    #[serde(rename = "InitgPty", borrow)]
    initiating_party: Party<'a>,
}

#[derive(Debug, Serialize, Deserialize)]
struct PaymentHead<'a> {
    #[serde(rename = "PmtInfId", borrow)]
    payment_id: Txt<'a>,
    #[serde(rename = "PmtMtd", borrow)]
    method: Txt<'a>,
    #[serde(
        rename = "NbOfTxs",
        default,
        skip_serializing_if = "Option::is_none",
        borrow
    )]
    count: Option<Txt<'a>>,
    #[serde(
        rename = "CtrlSum",
        default,
        skip_serializing_if = "Option::is_none",
        borrow
    )]
    control_sum: Option<Txt<'a>>,
    #[serde(rename = "ReqdColltnDt", borrow)]
    collection_date: Txt<'a>,
    #[serde(rename = "Cdtr", borrow)]
    creditor: Party<'a>,
    #[serde(rename = "CdtrAcct", borrow)]
    creditor_account: Account<'a>,
    #[serde(rename = "CdtrAgt", borrow)]
    creditor_agent: Agent<'a>,
}

/// `DirectDebitTransactionInformation23`.
#[derive(Debug, Serialize, Deserialize)]
struct DirectDebit<'a> {
    #[serde(rename = "PmtId", borrow)]
    payment_id: PaymentId<'a>,
    #[serde(rename = "InstdAmt", borrow)]
    amount: Amount<'a>,
    #[serde(rename = "DrctDbtTx", borrow)]
    direct_debit: DirectDebitDetails<'a>,
    #[serde(rename = "DbtrAgt", borrow)]
    debtor_agent: Agent<'a>,
    #[serde(rename = "Dbtr", borrow)]
    debtor: Party<'a>,
    #[serde(rename = "DbtrAcct", borrow)]
    debtor_account: Account<'a>,
    #[serde(
        rename = "RmtInf",
        default,
        skip_serializing_if = "Option::is_none",
        borrow
    )]
    remittance: Option<Remittance<'a>>,
}

#[derive(Debug, Serialize, Deserialize)]
struct PaymentId<'a> {
    #[serde(rename = "EndToEndId", borrow)]
    end_to_end_id: Txt<'a>,
}

#[derive(Debug, Serialize, Deserialize)]
struct DirectDebitDetails<'a> {
    #[serde(rename = "MndtRltdInf", borrow)]
    mandate: MandateInfo<'a>,
}

#[derive(Debug, Serialize, Deserialize)]
struct MandateInfo<'a> {
    #[serde(rename = "MndtId", borrow)]
    mandate_id: Txt<'a>,
}

/// `RmtInf`: one `Strd` written, any number read (the schema allows many).
#[derive(Debug, Serialize, Deserialize)]
struct Remittance<'a> {
    #[serde(rename = "Strd", borrow)]
    structured: Repeated<'a, Structured<'a>>,
}

/// `Strd`: one `RfrdDocInf` per token id.
#[derive(Debug, Serialize, Deserialize)]
struct Structured<'a> {
    #[serde(rename = "RfrdDocInf", default, borrow)]
    documents: TokenReferences<'a>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ReferredDocument<'a> {
    #[serde(
        rename = "Tp",
        default,
        skip_serializing_if = "Option::is_none",
        borrow
    )]
    kind: Option<DocumentKind<'a>>,
    #[serde(
        rename = "Nb",
        default,
        skip_serializing_if = "Option::is_none",
        borrow
    )]
    number: Option<Txt<'a>>,
}

#[derive(Debug, Serialize, Deserialize)]
struct DocumentKind<'a> {
    #[serde(rename = "CdOrPrtry", borrow)]
    code_or_proprietary: CodeOrProprietary<'a>,
}

#[derive(Debug, Serialize, Deserialize)]
struct CodeOrProprietary<'a> {
    #[serde(
        rename = "Cd",
        default,
        skip_serializing_if = "Option::is_none",
        borrow
    )]
    code: Option<Txt<'a>>,
    #[serde(
        rename = "Prtry",
        default,
        skip_serializing_if = "Option::is_none",
        borrow
    )]
    proprietary: Option<Txt<'a>>,
}

impl ReferredDocument<'_> {
    fn token(token_id: &[u8; 16]) -> Self {
        Self {
            kind: Some(DocumentKind {
                code_or_proprietary: CodeOrProprietary {
                    code: None,
                    proprietary: Some(TOKEN_DOCUMENT_TYPE.into()),
                },
            }),
            number: Some(values::format_token_id(token_id).into()),
        }
    }

    fn is_token(&self) -> bool {
        let proprietary = self
            .kind
            .as_ref()
            .and_then(|kind| kind.code_or_proprietary.proprietary.as_ref());
        proprietary.is_some_and(|proprietary| proprietary.as_str() == TOKEN_DOCUMENT_TYPE)
    }
}

/// A repeated element: written from one value without a `Vec`, read into a `Vec`.
#[derive(Debug)]
enum Repeated<'a, T> {
    One(&'a T),
    Read(Vec<T>),
}

impl<T: Serialize> Serialize for Repeated<'_, T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::One(value) => serializer.collect_seq(core::iter::once(value)),
            Self::Read(values) => values.serialize(serializer),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Repeated<'_, T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::deserialize(deserializer).map(Self::Read)
    }
}

/// The token references of a deduction: written straight from the model's ids, read as they come.
#[derive(Debug)]
enum TokenReferences<'a> {
    Write(&'a [[u8; 16]]),
    Read(Vec<ReferredDocument<'a>>),
}

impl Default for TokenReferences<'_> {
    fn default() -> Self {
        Self::Read(Vec::new())
    }
}

impl Serialize for TokenReferences<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Write(token_ids) => {
                serializer.collect_seq(token_ids.iter().map(ReferredDocument::token))
            }
            Self::Read(documents) => documents.serialize(serializer),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for TokenReferences<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::deserialize(deserializer).map(Self::Read)
    }
}

// --- Model → XML ---------------------------------------------------------------------------------------------------

fn check_head(head: &DeductionFileHead) -> Result<Currency> {
    values::check_text(&head.header.message_id, "GrpHdr/MsgId", 35)?;
    values::check_unix_seconds(head.header.created_unix_seconds, "GrpHdr/CreDtTm")?;
    values::check_text(&head.credit_id, "GrpHdr/InitgPty/Id/OrgId/Othr/Id", 35)?;
    values::check_text(&head.bank_id, "PmtInf/CdtrAgt/FinInstnId/Othr/Id", 35)?;
    values::check_text(&head.creditor_account, "PmtInf/CdtrAcct/Id/Othr/Id", 34)?;
    values::check_date(head.collection_date, "PmtInf/ReqdColltnDt")?;
    if head.count == 0 {
        return Err(InterchangeError::NoItems(LAYOUT.description));
    }
    if head.count > MAX_COUNT {
        return Err(InterchangeError::field(COUNT_FIELD, FieldProblem::TooLarge));
    }
    values::check_amount(head.control_sum, SUM_FIELD, true)?;
    Currency::from_numeric(head.currency)
}

fn head_xml(head: &DeductionFileHead, currency: Currency) -> HeadDocument<'_> {
    let count = values::format_count(head.count);
    let control_sum = values::format_amount(head.control_sum, currency);
    HeadDocument {
        namespace: Some(PAIN_008_NAMESPACE.into()),
        initiation: InitiationHead {
            group_header: GroupHeader {
                message_id: head.header.message_id.as_str().into(),
                created: values::format_date_time(head.header.created_unix_seconds).into(),
                count: count.into(),
                control_sum: Some(control_sum.into()),
                initiating_party: Party::organisation(&head.credit_id),
            },
            payment: PaymentHead {
                // One payment information block per file: it takes the message's id.
                payment_id: head.header.message_id.as_str().into(),
                method: "DD".into(),
                count: Some(count.into()),
                control_sum: Some(control_sum.into()),
                collection_date: values::format_date(head.collection_date).into(),
                creditor: Party::organisation(&head.credit_id),
                creditor_account: Account::new(&head.creditor_account, Some(currency)),
                creditor_agent: Agent::new(&head.bank_id),
            },
        },
    }
}

fn check_deduction(deduction: &Deduction) -> Result<()> {
    values::check_text(
        &deduction.end_to_end_id,
        "DrctDbtTxInf/PmtId/EndToEndId",
        35,
    )?;
    values::check_text(
        &deduction.mandate_id,
        "DrctDbtTxInf/DrctDbtTx/MndtRltdInf/MndtId",
        35,
    )?;
    values::check_text(
        &deduction.user_id,
        "DrctDbtTxInf/Dbtr/Id/PrvtId/Othr/Id",
        35,
    )?;
    values::check_text(&deduction.name, "DrctDbtTxInf/Dbtr/Nm", 140)?;
    values::check_text(
        &deduction.debtor_account,
        "DrctDbtTxInf/DbtrAcct/Id/Othr/Id",
        34,
    )?;
    values::check_amount(deduction.amount, "DrctDbtTxInf/InstdAmt", true)
}

fn item_xml<'a>(
    deduction: &'a Deduction,
    bank_id: &'a str,
    currency: Currency,
) -> DirectDebitWithTokens<'a> {
    DirectDebitWithTokens {
        structured: Structured {
            documents: TokenReferences::Write(&deduction.token_ids),
        },
        deduction,
        bank_id,
        currency,
    }
}

/// A deduction ready to serialize: `Strd` lives here so the item can borrow it.
struct DirectDebitWithTokens<'a> {
    structured: Structured<'a>,
    deduction: &'a Deduction,
    bank_id: &'a str,
    currency: Currency,
}

impl Serialize for DirectDebitWithTokens<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let deduction = self.deduction;
        DirectDebit {
            payment_id: PaymentId {
                end_to_end_id: deduction.end_to_end_id.as_str().into(),
            },
            amount: Amount::new(deduction.amount, self.currency),
            direct_debit: DirectDebitDetails {
                mandate: MandateInfo {
                    mandate_id: deduction.mandate_id.as_str().into(),
                },
            },
            debtor_agent: Agent::new(self.bank_id),
            debtor: Party::person(&deduction.name, &deduction.user_id),
            debtor_account: Account::new(&deduction.debtor_account, None),
            remittance: (!deduction.token_ids.is_empty()).then_some(Remittance {
                structured: Repeated::One(&self.structured),
            }),
        }
        .serialize(serializer)
    }
}

// --- XML → model ---------------------------------------------------------------------------------------------------

fn read_head(document: &HeadDocument<'_>) -> Result<(DeductionFileHead, Currency)> {
    let group = &document.initiation.group_header;
    let payment = &document.initiation.payment;
    values::expect_code(payment.method.as_str(), "DD", "PmtInf/PmtMtd")?;
    let currency_code = required(&payment.creditor_account.currency, "PmtInf/CdtrAcct/Ccy")?;
    let currency = Currency::from_alphabetic(currency_code)?;
    let count = values::parse_count(group.count.as_str(), COUNT_FIELD)?;
    let control_sum = values::parse_amount(
        required(&group.control_sum, SUM_FIELD)?,
        currency,
        SUM_FIELD,
        true,
    )?;
    if let Some(payment_count) = &payment.count {
        let payment_count = values::parse_count(payment_count.as_str(), "PmtInf/NbOfTxs")?;
        same_number("PmtInf/NbOfTxs", count, payment_count)?;
    }
    if let Some(payment_sum) = &payment.control_sum {
        let payment_sum =
            values::parse_amount(payment_sum.as_str(), currency, "PmtInf/CtrlSum", true)?;
        same_number("PmtInf/CtrlSum", control_sum, payment_sum)?;
    }
    let credit_id = values::read_text(
        group
            .initiating_party
            .organisation_id("GrpHdr/InitgPty/Id/OrgId")?,
        "GrpHdr/InitgPty/Id/OrgId/Othr/Id",
        35,
    )?;
    let creditor = payment.creditor.organisation_id("PmtInf/Cdtr/Id/OrgId")?;
    same_text(
        "PmtInf/Cdtr/Id/OrgId/Othr/Id",
        "credit id",
        &credit_id,
        creditor,
    )?;
    let head = DeductionFileHead {
        header: Header {
            message_id: values::read_text(group.message_id.as_str(), "GrpHdr/MsgId", 35)?,
            created_unix_seconds: values::parse_date_time(
                group.created.as_str(),
                "GrpHdr/CreDtTm",
            )?,
        },
        credit_id,
        bank_id: values::read_text(
            payment.creditor_agent.id(),
            "PmtInf/CdtrAgt/FinInstnId/Othr/Id",
            35,
        )?,
        creditor_account: values::read_text(
            payment.creditor_account.id.id(),
            "PmtInf/CdtrAcct/Id/Othr/Id",
            34,
        )?,
        collection_date: values::parse_date(
            payment.collection_date.as_str(),
            "PmtInf/ReqdColltnDt",
        )?,
        currency: currency.numeric,
        count,
        control_sum,
    };
    if count == 0 {
        return Err(InterchangeError::NoItems(LAYOUT.description));
    }
    Ok((head, currency))
}

fn read_deduction(
    item: &Tape,
    head: &DeductionFileHead,
    currency: Currency,
    tally: &mut Tally,
) -> Result<Deduction> {
    tally.check_room(head.count, COUNT_FIELD)?;
    let item: DirectDebit<'_> =
        item.deserialize()
            .map_err(|source| InterchangeError::Deserialize {
                element: "DrctDbtTxInf",
                source,
            })?;
    same_text(
        "DrctDbtTxInf/DbtrAgt/FinInstnId/Othr/Id",
        "bank id",
        &head.bank_id,
        item.debtor_agent.id(),
    )?;
    let deduction = Deduction {
        end_to_end_id: values::read_text(
            item.payment_id.end_to_end_id.as_str(),
            "DrctDbtTxInf/PmtId/EndToEndId",
            35,
        )?,
        mandate_id: values::read_text(
            item.direct_debit.mandate.mandate_id.as_str(),
            "DrctDbtTxInf/DrctDbtTx/MndtRltdInf/MndtId",
            35,
        )?,
        user_id: values::read_text(
            item.debtor.private_id("DrctDbtTxInf/Dbtr/Id/PrvtId")?,
            "DrctDbtTxInf/Dbtr/Id/PrvtId/Othr/Id",
            35,
        )?,
        name: values::read_text(
            required(&item.debtor.name, "DrctDbtTxInf/Dbtr/Nm")?,
            "DrctDbtTxInf/Dbtr/Nm",
            140,
        )?,
        debtor_account: values::read_text(
            item.debtor_account.id.id(),
            "DrctDbtTxInf/DbtrAcct/Id/Othr/Id",
            34,
        )?,
        amount: item.amount.minor(currency, "DrctDbtTxInf/InstdAmt", true)?,
        token_ids: read_token_ids(item.remittance.as_ref())?,
    };
    tally.add(&deduction.end_to_end_id, deduction.amount, SUM_FIELD)?;
    Ok(deduction)
}

/// The ids of the `RfrdDocInf` of type [`TOKEN_DOCUMENT_TYPE`], in order; other referred documents are not ours.
fn read_token_ids(remittance: Option<&Remittance<'_>>) -> Result<Vec<[u8; 16]>> {
    const FIELD: &str = "DrctDbtTxInf/RmtInf/Strd/RfrdDocInf/Nb";
    let Some(Remittance {
        structured: Repeated::Read(structured),
    }) = remittance
    else {
        return Ok(Vec::new());
    };
    let mut token_ids = Vec::new();
    for block in structured {
        let TokenReferences::Read(documents) = &block.documents else {
            continue;
        };
        for document in documents.iter().filter(|document| document.is_token()) {
            token_ids.push(values::parse_token_id(
                required(&document.number, FIELD)?,
                FIELD,
            )?);
        }
    }
    Ok(token_ids)
}
