//! The files the bank and the credit company exchange on settlement day (patent Fig. 8 and 11), in ISO 20022
//! XML, each signed by its sender with a detached ECDSA P-256 signature:
//!
//! | file | message | from → to | patent step |
//! |---|---|---|---|
//! | [`DeductionFile`] | `pain.008.001.08` (customer direct debit initiation) | credit → bank | 1101: per user the sum due, the debtor account, and the tokens already reflected |
//! | [`StatusReport`] | `pain.002.001.10` (customer payment status report) | bank → credit | 802-805: accepted, partly or rejected per user (ISO reason codes), how much came from the pool and from the personal account, each token confirmed or not |
//! | [`TransferNotice`] | `camt.054.001.08` (bank-to-customer debit/credit notification) | bank → credit | 804 / 1102: the batch transfer to the credit company's account |
//!
//! The model below is the whole meaning of a file; the XML is its only encoding. Amounts are integer minor
//! units of the file's ISO 4217 currency (numeric here, alphabetic in the XML, with the currency's decimals:
//! [`CURRENCIES`] lists the currencies the files may carry; any other is refused).
//! `docs/interchange.md` maps every model field to its XML path, for another company to produce or read the files.
//!
//! # Whole files and streams
//!
//! `to_xml` / `write_xml` and `from_xml` write and read a whole file. A settlement day may concern a million users,
//! so each message also has a streaming writer and reader whose memory does not grow with the file (but for 16
//! bytes per item that detect duplicate end-to-end ids):
//!
//! - [`DeductionWriter::new`] takes the [`DeductionFileHead`] (the header and group fields, the count and the
//!   control sum), [`DeductionWriter::write`] one [`Deduction`] at a time, and [`DeductionWriter::finish`] refuses to
//!   close a file whose deductions are not the count and sum promised.
//! - [`DeductionReader::new`] reads the head ([`DeductionReader::head`]); the reader is then an iterator of
//!   `Result<Deduction>` whose last item is an error if `NbOfTxs` or `CtrlSum` disagree with the deductions.
//! - [`StatusReportWriter`] / [`StatusReportReader`] and [`TransferNoticeWriter`] / [`TransferNoticeReader`] do the
//!   same for the other two messages.
//!
//! Readers refuse, with an [`InterchangeError`] naming the field by its XML path, what is not well-formed or is
//! truncated, another message or version (namespace), counts or sums that disagree, duplicate end-to-end ids,
//! amounts that are negative, zero where more is required, with more decimals than the currency or more than 18
//! digits, unknown currencies, malformed token ids and fields longer than ISO 20022 allows. Writers refuse the same
//! of the model, so what they write reads back exactly.
//!
//! # Signatures
//!
//! The sender signs each file with a detached signature: `NAME.sig` next to `NAME.xml` holds the DER-encoded ECDSA
//! P-256 signature, with SHA-256, of the exact bytes of `NAME.xml` — what
//! `openssl dgst -sha256 -verify sender.pub.pem -signature NAME.sig NAME.xml` checks. [`write_signed`] and
//! [`SignedFile`] write a file and then its signature atomically; [`read_signed_deductions`],
//! [`read_signed_status_report`] and [`read_signed_transfer_notice`] verify the whole file before parsing any of it.
//! See [`signing`].
//!
//! # The settlement split
//!
//! pain.002 has no element for how a collected sum was split between the user's pool deposits and personal
//! account, nor for the answer about each token. Each `TxInfAndSts` carries them in its `SplmtryData/Envlp`, which
//! ISO 20022 leaves open (`xs:any`, lax), as elements of our namespace [`SETTLEMENT_NAMESPACE`]
//! (`urn:linkcard:xsd:settlement.001`, schema in `schema/linkcard.settlement.001.xsd`), amounts in the report's
//! currency like the ISO amounts beside them:
//!
//! ```xml
//! <SplmtryData><Envlp>
//!   <Sttlm xmlns="urn:linkcard:xsd:settlement.001">
//!     <FrPool>30.00</FrPool>            <!-- from_pool -->
//!     <FrPrsnlAcct>40.00</FrPrsnlAcct>  <!-- from_personal -->
//!     <Tkn>                             <!-- one per token of the deduction, in order -->
//!       <Id>abababababababababababababababab</Id>
//!       <Cnfrmd>true</Cnfrmd>
//!       <Drwn>30.00</Drwn>
//!       <Rmng>10.00</Rmng>
//!     </Tkn>
//!   </Sttlm>
//! </Envlp></SplmtryData>
//! ```
//!
//! # Example
//!
//! ```
//! use interchange::{Date, Deduction, DeductionFile, DeductionReader, Header};
//!
//! let file = DeductionFile {
//!     header: Header { message_id: "DED-2026-01-31".into(), created_unix_seconds: 1_767_225_600 },
//!     credit_id: "CREDIT-CO".into(),
//!     bank_id: "BANK-1".into(),
//!     creditor_account: "CREDIT-ACC".into(),
//!     collection_date: Date { year: 2026, month: 1, day: 31 },
//!     currency: 392, // JPY
//!     deductions: vec![Deduction {
//!         end_to_end_id: "DED-2026-01-31-0000001".into(),
//!         mandate_id: "MANDATE-1".into(),
//!         user_id: "USER-1".into(),
//!         name: "Ada Lovelace".into(),
//!         debtor_account: "0012-0000000001".into(),
//!         amount: 12_345,
//!         token_ids: vec![[0xab; 16]],
//!     }],
//! };
//! let xml = file.to_xml()?;
//! assert!(String::from_utf8_lossy(&xml).contains(r#"<InstdAmt Ccy="JPY">12345</InstdAmt>"#));
//! assert_eq!(DeductionFile::from_xml(&xml)?, file);
//!
//! // The same file, streamed.
//! let mut reader = DeductionReader::new(xml.as_slice())?;
//! assert_eq!(reader.head().control_sum, 12_345);
//! for deduction in reader.by_ref() {
//!     assert_eq!(deduction?.name, "Ada Lovelace");
//! }
//!
//! // Signed by the credit company, verified by the bank before it reads anything.
//! let directory = std::env::temp_dir().join(format!("interchange-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&directory).expect("a temporary directory");
//! let path = directory.join("DED-2026-01-31.xml");
//! let credit_key = p256::ecdsa::SigningKey::from_slice(&[7; 32]).expect("a valid key");
//! interchange::write_signed(&path, &xml, &credit_key)?;
//! let credit_public = p256::PublicKey::from(credit_key.verifying_key());
//! let deductions = interchange::read_signed_deductions(&path, &credit_public)?;
//! assert_eq!(deductions.head().count, 1);
//! # std::fs::remove_dir_all(&directory).ok();
//! # Ok::<(), interchange::InterchangeError>(())
//! ```

#![forbid(unsafe_code)]

mod deduction;
mod error;
mod notice;
pub mod signing;
mod spool;
mod status;
mod tally;
mod tape;
mod values;
mod xml;

pub use deduction::{
    DeductionBody, DeductionFileHead, DeductionReader, DeductionWriter, PAIN_008_MESSAGE_NAME,
    PAIN_008_NAMESPACE, TOKEN_DOCUMENT_TYPE,
};
pub use error::{FieldProblem, InterchangeError, Result};
pub use notice::{
    CAMT_054_NAMESPACE, TransferNoticeBody, TransferNoticeHead, TransferNoticeReader,
    TransferNoticeWriter,
};
pub use signing::{
    SignedFile, read_signed_deductions, read_signed_status_report, read_signed_transfer_notice,
    verify_file, write_signed,
};
pub use spool::{PipedSpool, Spool, SpoolFollower, SpoolItems};
pub use status::{PAIN_002_NAMESPACE, StatusReportHead, StatusReportReader, StatusReportWriter};
pub use values::{CURRENCIES, Currency, MAX_AMOUNT};
pub use xml::SETTLEMENT_NAMESPACE;

/// A calendar date (ISO 8601 `YYYY-MM-DD` in the XML).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

/// What every file carries: its sender's unique message id and when it was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// 1-35 characters, unique per sender (`GrpHdr/MsgId`).
    pub message_id: String,
    /// Seconds since 1970-01-01T00:00:00Z (`GrpHdr/CreDtTm`, written in UTC with `Z`).
    pub created_unix_seconds: u64,
}

/// Deduction data (patent step 1101): what the credit company asks the bank to collect from each user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeductionFile {
    pub header: Header,
    /// The credit company (initiating party and creditor), 1-35 characters.
    pub credit_id: String,
    /// The debtors' bank (debtor agent and creditor agent), 1-35 characters.
    pub bank_id: String,
    /// The credit company's account at the bank that receives the collection.
    pub creditor_account: String,
    /// The day the bank collects (`ReqdColltnDt`).
    pub collection_date: Date,
    /// ISO 4217 numeric.
    pub currency: u16,
    pub deductions: Vec<Deduction>,
}

/// One user's due sum.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Deduction {
    /// 1-35 characters, unique in the file; the status report and the notice answer by it.
    pub end_to_end_id: String,
    /// The direct-debit mandate the user gave the credit company, 1-35 characters.
    pub mandate_id: String,
    /// The user's id at the bank (the token's user id), 1-35 characters.
    pub user_id: String,
    /// The user's name, 1-140 characters.
    pub name: String,
    /// The user's personal account number at the bank, 1-34 characters.
    pub debtor_account: String,
    /// Minor units, > 0.
    pub amount: u64,
    /// The tokens of this bank the credit system reflected for the user and now asks the bank to confirm.
    pub token_ids: Vec<[u8; 16]>,
}

/// The bank's answer per deduction (patent steps 802-805).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum TransactionStatus {
    /// Collected in full (`ACSC`).
    Accepted,
    /// Collected in part (`PART`), with a reason.
    Partial,
    /// Nothing collected (`RJCT`), with a reason.
    Rejected,
}

/// ISO 20022 external status reason codes the bank uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ReasonCode {
    /// `AM04`: insufficient funds.
    InsufficientFunds,
    /// `AC01`: the account or user is not known at the bank.
    IncorrectAccount,
    /// `MD01`: no mandate (the user is not the account's holder).
    NoMandate,
    /// `AM05`: a duplicate of an end-to-end id already collected.
    Duplicate,
}

/// A payment status report (pain.002) for one deduction file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    pub header: Header,
    pub bank_id: String,
    pub credit_id: String,
    /// The deduction file answered (`OrgnlGrpInfAndSts/OrgnlMsgId`).
    pub original_message_id: String,
    pub currency: u16,
    pub statuses: Vec<DeductionStatus>,
}

/// What the bank did with one deduction.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeductionStatus {
    pub end_to_end_id: String,
    pub status: TransactionStatus,
    /// Present unless `Accepted`.
    pub reason: Option<ReasonCode>,
    /// The sum asked for.
    pub due: u64,
    /// Taken from the user's pool deposits for this credit company.
    pub from_pool: u64,
    /// Taken from the user's personal account.
    pub from_personal: u64,
    /// One answer per token id of the deduction, in the same order.
    pub tokens: Vec<TokenConfirmation>,
}

/// Whether a token the credit system reflected is backed by a pool deposit at the bank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TokenConfirmation {
    pub token_id: [u8; 16],
    /// The bank holds (or held) a confirmed pool deposit for this token, this user and this credit company.
    pub confirmed: bool,
    /// How much of that deposit this settlement used (0 when not confirmed).
    pub drawn: u64,
    /// What is left of the deposit in the pool after this settlement (the user's prepayment).
    pub remaining: u64,
}

/// The batch transfer to the credit company (camt.054 credit notification).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferNotice {
    pub header: Header,
    pub bank_id: String,
    pub credit_id: String,
    /// The deduction file this transfer settles.
    pub original_message_id: String,
    /// The credit company's account credited.
    pub account: String,
    pub booking_date: Date,
    pub currency: u16,
    /// The sum of `entries`.
    pub total: u64,
    /// Per collected deduction: its end-to-end id and the amount collected (> 0).
    pub entries: Vec<NoticeEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NoticeEntry {
    pub end_to_end_id: String,
    pub amount: u64,
}
