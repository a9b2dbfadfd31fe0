//! Why a file could not be written, read or verified.

use std::path::PathBuf;

/// Every way this crate refuses a file or a model value. Variants keep their typed sources.
#[derive(Debug, thiserror::Error)]
pub enum InterchangeError {
    #[error("I/O error while {action}")]
    Io {
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("not well-formed XML near byte {position}")]
    Xml {
        position: u64,
        #[source]
        source: quick_xml::Error,
    },
    #[error("the spool of a file's items is broken: {0}")]
    Spool(&'static str),
    #[error("the XML is not valid UTF-8")]
    NotUtf8(#[source] std::str::Utf8Error),
    #[error("the file ends inside <{open_element}>: it is truncated")]
    Truncated { open_element: String },
    #[error("the document is {found}, not {expected}")]
    WrongMessage {
        expected: &'static str,
        found: String,
    },
    #[error("unexpected <{element}> {context}")]
    UnexpectedElement {
        element: String,
        context: &'static str,
    },
    #[error("unexpected text {context}")]
    UnexpectedText { context: &'static str },
    #[error("a DOCTYPE is not allowed in an interchange file")]
    DocType,
    #[error("the XML declares encoding {0:?}; only UTF-8 is allowed")]
    Encoding(String),
    #[error("<{element}> is longer than {limit} bytes")]
    ElementTooLarge { element: &'static str, limit: usize },
    #[error("elements nest more than {limit} levels deep in <{element}>")]
    TooDeep { element: &'static str, limit: usize },
    #[error("cannot read <{element}>")]
    Deserialize {
        element: &'static str,
        #[source]
        source: quick_xml::DeError,
    },
    #[error("cannot write <{element}>")]
    Serialize {
        element: &'static str,
        #[source]
        source: quick_xml::SeError,
    },
    #[error("{field}: {problem}")]
    Field {
        field: &'static str,
        problem: FieldProblem,
    },
    #[error("unknown ISO 4217 currency {0}")]
    UnknownCurrency(String),
    #[error("{field} is {found:?} but the file's {expected_from} is {expected:?}")]
    Mismatch {
        field: &'static str,
        expected_from: &'static str,
        expected: String,
        found: String,
    },
    #[error("{field} declares {declared} items but the file has {actual}")]
    CountMismatch {
        field: &'static str,
        declared: u64,
        actual: u64,
    },
    #[error("{field} declares {declared} (minor units) but the items sum to {actual}")]
    SumMismatch {
        field: &'static str,
        declared: u64,
        actual: u64,
    },
    #[error("end-to-end id {0:?} appears more than once")]
    DuplicateEndToEndId(String),
    #[error("a {0} must have at least one item")]
    NoItems(&'static str),
    #[error("status of {end_to_end_id:?}: {problem}")]
    InconsistentStatus {
        end_to_end_id: String,
        problem: &'static str,
    },
    #[error("the writer failed earlier; its output is incomplete")]
    WriterFailed,
    #[error("in item {index}")]
    Item {
        /// 1-based position of the item in the file.
        index: u64,
        #[source]
        source: Box<InterchangeError>,
    },
    #[error("signature file {path:?} cannot be read")]
    MissingSignature {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("signature file {path:?} is not a DER-encoded ECDSA signature")]
    MalformedSignature {
        path: PathBuf,
        #[source]
        source: Option<p256::ecdsa::Error>,
    },
    #[error(
        "the signature of {path:?} does not verify: the file was altered or signed by another key"
    )]
    BadSignature {
        path: PathBuf,
        #[source]
        source: p256::ecdsa::Error,
    },
    #[error("signing failed")]
    Signing(#[source] p256::ecdsa::Error),
}

impl InterchangeError {
    pub(crate) fn field(field: &'static str, problem: FieldProblem) -> Self {
        Self::Field { field, problem }
    }

    pub(crate) fn in_item(self, index: u64) -> Self {
        Self::Item {
            index,
            source: Box::new(self),
        }
    }

    pub(crate) fn io(action: &'static str) -> impl FnOnce(std::io::Error) -> Self {
        move |source| Self::Io { action, source }
    }
}

/// What is wrong with one field's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldProblem {
    #[error("missing")]
    Missing,
    #[error("empty")]
    Empty,
    #[error("{actual} characters, at most {max} allowed")]
    TooLong { max: usize, actual: usize },
    #[error("contains a control character")]
    ControlCharacter,
    #[error("starts or ends with a space")]
    SurroundingSpace,
    #[error("not a count of 1 to 15 digits")]
    NotACount,
    #[error("not a decimal amount")]
    NotAnAmount,
    #[error("negative")]
    Negative,
    #[error("more than the currency's {allowed} decimals")]
    TooManyDecimals { allowed: u8 },
    #[error("zero where more than zero is required")]
    Zero,
    #[error("exceeds the 18 digits ISO 20022 allows")]
    TooLarge,
    #[error("not a date YYYY-MM-DD")]
    NotADate,
    #[error("not a date and time YYYY-MM-DDThh:mm:ss with Z or an offset")]
    NotADateTime,
    #[error("not a token id of 32 lowercase hexadecimal digits")]
    NotATokenId,
    #[error("not true or false")]
    NotABoolean,
    #[error("{found:?} where {expected:?} is required")]
    Unexpected {
        expected: &'static str,
        found: String,
    },
    #[error("unknown code {0:?}")]
    UnknownCode(String),
}

pub type Result<T, E = InterchangeError> = std::result::Result<T, E>;
