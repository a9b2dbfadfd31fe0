//! What the three messages share: text values that borrow from the input, the ISO 20022 party, agent, account
//! and amount elements, and the bounded-memory document writer and item reader.
//!
//! A file is a *head* (everything before the first item), the items, and the closing tags. The writer serializes
//! the head as a whole document and cuts off its closing tags, then serializes one item at a time. The reader
//! walks the XML events: it rebuilds the head as a closed document, which serde reads, then records one item at a
//! time on a [`Tape`] while it checks it, which serde reads without parsing the item again.

use std::borrow::Cow;
use std::io::{BufRead, BufReader, BufWriter, Seek, Write};

use quick_xml::escape::{EscapeError, resolve_predefined_entity};
use quick_xml::events::{BytesEnd, BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;
use quick_xml::{Writer, XmlVersion};
use serde::{Deserialize, Serialize};

use crate::error::{FieldProblem, InterchangeError, Result};
use crate::tally::Tally;
use crate::tape::Tape;
use crate::values::{Currency, SmallText};

/// The namespace of the settlement split inside a status report's `SplmtryData/Envlp`.
pub const SETTLEMENT_NAMESPACE: &str = "urn:linkcard:xsd:settlement.001";

/// The head of a file is small (a few hundred bytes); anything larger is not one of ours.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// One item: a deduction with a few thousand tokens still fits.
const MAX_ITEM_BYTES: usize = 1024 * 1024;
/// How deep elements may nest below a head block or an item. ISO 20022 messages nest about 10 levels; the limit
/// keeps serde's recursion (and the stack) bounded whatever the input.
const MAX_NESTING: usize = 32;

/// The text of an element or attribute: borrowed from the input when read, formatted on the stack when written.
#[derive(Debug, Clone)]
pub(crate) enum Txt<'a> {
    Str(Cow<'a, str>),
    Small(SmallText),
}

impl<'a> Txt<'a> {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            Self::Str(text) => text,
            Self::Small(text) => text.as_str(),
        }
    }
}

impl<'a> From<&'a str> for Txt<'a> {
    fn from(text: &'a str) -> Self {
        Self::Str(Cow::Borrowed(text))
    }
}

impl From<SmallText> for Txt<'_> {
    fn from(text: SmallText) -> Self {
        Self::Small(text)
    }
}

impl Serialize for Txt<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Txt<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TxtVisitor;
        impl<'de> serde::de::Visitor<'de> for TxtVisitor {
            type Value = Txt<'de>;
            fn expecting(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                formatter.write_str("text")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                text: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(Txt::Str(Cow::Borrowed(text)))
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(Txt::Str(Cow::Owned(text.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, text: String) -> Result<Self::Value, E> {
                Ok(Txt::Str(Cow::Owned(text)))
            }
        }
        deserializer.deserialize_str(TxtVisitor)
    }
}

/// An optional element that our files always carry: refuses its absence by name.
pub(crate) fn required<'t, 'a>(value: &'t Option<Txt<'a>>, field: &'static str) -> Result<&'t str> {
    value
        .as_ref()
        .map(Txt::as_str)
        .ok_or(InterchangeError::field(field, FieldProblem::Missing))
}

/// `…/Othr/Id`: the generic identification of an organisation, a person, an institution or an account.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct OtherId<'a> {
    #[serde(rename = "Othr", borrow)]
    pub other: GenericId<'a>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct GenericId<'a> {
    #[serde(rename = "Id", borrow)]
    pub id: Txt<'a>,
}

impl<'a> OtherId<'a> {
    pub(crate) fn new(id: impl Into<Txt<'a>>) -> Self {
        Self {
            other: GenericId { id: id.into() },
        }
    }

    pub(crate) fn id(&self) -> &str {
        self.other.id.as_str()
    }
}

/// `PartyIdentification135`: a name and an organisation (`OrgId`) or private (`PrvtId`) identification.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Party<'a> {
    #[serde(
        rename = "Nm",
        default,
        skip_serializing_if = "Option::is_none",
        borrow
    )]
    pub name: Option<Txt<'a>>,
    #[serde(rename = "Id", borrow)]
    pub id: PartyId<'a>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct PartyId<'a> {
    #[serde(
        rename = "OrgId",
        default,
        skip_serializing_if = "Option::is_none",
        borrow
    )]
    pub organisation: Option<OtherId<'a>>,
    #[serde(
        rename = "PrvtId",
        default,
        skip_serializing_if = "Option::is_none",
        borrow
    )]
    pub private: Option<OtherId<'a>>,
}

impl<'a> Party<'a> {
    /// A company: `Id/OrgId/Othr/Id`.
    pub(crate) fn organisation(id: &'a str) -> Self {
        Self {
            name: None,
            id: PartyId {
                organisation: Some(OtherId::new(id)),
                private: None,
            },
        }
    }

    /// A person: `Nm` and `Id/PrvtId/Othr/Id`.
    pub(crate) fn person(name: &'a str, id: &'a str) -> Self {
        Self {
            name: Some(name.into()),
            id: PartyId {
                organisation: None,
                private: Some(OtherId::new(id)),
            },
        }
    }

    pub(crate) fn organisation_id(&self, field: &'static str) -> Result<&str> {
        self.id
            .organisation
            .as_ref()
            .map(OtherId::id)
            .ok_or(InterchangeError::field(field, FieldProblem::Missing))
    }

    pub(crate) fn private_id(&self, field: &'static str) -> Result<&str> {
        self.id
            .private
            .as_ref()
            .map(OtherId::id)
            .ok_or(InterchangeError::field(field, FieldProblem::Missing))
    }
}

/// `BranchAndFinancialInstitutionIdentification6` as `FinInstnId/Othr/Id`: the bank's id.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Agent<'a> {
    #[serde(rename = "FinInstnId", borrow)]
    pub institution: OtherId<'a>,
}

impl<'a> Agent<'a> {
    pub(crate) fn new(bank_id: &'a str) -> Self {
        Self {
            institution: OtherId::new(bank_id),
        }
    }

    pub(crate) fn id(&self) -> &str {
        self.institution.id()
    }
}

/// `CashAccount38` as `Id/Othr/Id` and, for the creditor's account, its currency.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Account<'a> {
    #[serde(rename = "Id", borrow)]
    pub id: OtherId<'a>,
    #[serde(
        rename = "Ccy",
        default,
        skip_serializing_if = "Option::is_none",
        borrow
    )]
    pub currency: Option<Txt<'a>>,
}

impl<'a> Account<'a> {
    pub(crate) fn new(number: &'a str, currency: Option<Currency>) -> Self {
        Self {
            id: OtherId::new(number),
            currency: currency.map(|c| c.alphabetic.into()),
        }
    }
}

/// `ActiveOrHistoricCurrencyAndAmount`: `<… Ccy="EUR">12.34</…>`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Amount<'a> {
    #[serde(rename = "@Ccy", borrow)]
    pub currency: Txt<'a>,
    #[serde(rename = "$text", borrow)]
    pub value: Txt<'a>,
}

impl Amount<'_> {
    pub(crate) fn new(minor: u64, currency: Currency) -> Self {
        Self {
            currency: currency.alphabetic.into(),
            value: crate::values::format_amount(minor, currency).into(),
        }
    }

    /// The amount in minor units, refusing another currency than the file's.
    pub(crate) fn minor(
        &self,
        currency: Currency,
        field: &'static str,
        positive: bool,
    ) -> Result<u64> {
        if self.currency.as_str() != currency.alphabetic {
            return Err(InterchangeError::Mismatch {
                field,
                expected_from: "currency",
                expected: currency.alphabetic.to_owned(),
                found: self.currency.as_str().to_owned(),
            });
        }
        crate::values::parse_amount(self.value.as_str(), currency, field, positive)
    }
}

/// Where a message keeps its items: the element path from `Document` to the items' parent, and the items' name.
#[derive(Debug)]
pub(crate) struct Layout {
    pub namespace: &'static str,
    pub path: &'static [&'static str],
    pub item: &'static str,
    /// What the message is called in errors.
    pub description: &'static str,
}

/// Writes a document: its head, then one item at a time, then its closing tags. Memory: one item's text.
pub(crate) struct DocumentWriter<W: Write> {
    out: BufWriter<W>,
    layout: &'static Layout,
    item_text: String,
    failed: bool,
}

impl<W: Write> DocumentWriter<W> {
    /// Writes the XML declaration and `head` (serialized as a `Document` whose path elements are left open).
    pub(crate) fn start<H: Serialize>(out: W, layout: &'static Layout, head: &H) -> Result<Self> {
        let mut text = String::with_capacity(2048);
        let serializer = quick_xml::se::Serializer::with_root(&mut text, Some("Document"))
            .map_err(|source| InterchangeError::Serialize {
                element: "Document",
                source,
            })?;
        head.serialize(serializer)
            .map_err(|source| InterchangeError::Serialize {
                element: "Document",
                source,
            })?;
        let closing = closing_tags(layout.path);
        let open_head =
            text.strip_suffix(closing.as_str())
                .ok_or_else(|| InterchangeError::Serialize {
                    element: "Document",
                    source: quick_xml::SeError::Custom(
                        "the head does not end with the item's parents".to_owned(),
                    ),
                })?;
        let mut writer = Self {
            out: BufWriter::with_capacity(256 * 1024, out),
            layout,
            item_text: String::with_capacity(4096),
            failed: false,
        };
        writer.put(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")?;
        writer.put(open_head.as_bytes())?;
        writer.put(b"\n")?;
        Ok(writer)
    }

    /// Serializes one item into the reusable buffer; nothing reaches the output if serialization fails.
    pub(crate) fn serialize_item<T: Serialize>(&mut self, item: &T) -> Result<()> {
        if self.failed {
            return Err(InterchangeError::WriterFailed);
        }
        item_text(self.layout.item, item, &mut self.item_text)
    }

    /// Writes a whole document: `head`, then `body`'s items as they are, then the closing tags. `check` sees the
    /// body's tally first and refuses a body that is not the one the head describes.
    pub(crate) fn with_body<H: Serialize>(
        out: W,
        (layout, head): (&'static Layout, &H),
        body: ItemBody,
        check: impl FnOnce(&Tally) -> Result<()>,
    ) -> Result<W> {
        let (tally, mut items) = body.into_items()?;
        check(&tally)?;
        let mut document = Self::start(out, layout, head)?;
        document.put_items(&mut items)?;
        document.finish()
    }

    /// Writes items [`item_text`] prepared ahead of the head (a body kept aside), as they are.
    pub(crate) fn put_items(&mut self, items: &mut impl std::io::Read) -> Result<()> {
        if self.failed {
            return Err(InterchangeError::WriterFailed);
        }
        std::io::copy(items, &mut self.out).map_err(|source| {
            self.failed = true;
            InterchangeError::Io {
                action: "writing the file",
                source,
            }
        })?;
        Ok(())
    }

    /// Writes the item [`Self::serialize_item`] prepared.
    pub(crate) fn commit_item(&mut self) -> Result<()> {
        let text = core::mem::take(&mut self.item_text);
        let written = self.put(text.as_bytes());
        self.item_text = text;
        written
    }

    /// Writes the closing tags and flushes; gives the output back.
    pub(crate) fn finish(mut self) -> Result<W> {
        if self.failed {
            return Err(InterchangeError::WriterFailed);
        }
        let mut closing = closing_tags(self.layout.path);
        closing.push('\n');
        self.put(closing.as_bytes())?;
        self.out.into_inner().map_err(|error| InterchangeError::Io {
            action: "flushing the file",
            source: error.into_error(),
        })
    }

    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes).map_err(|source| {
            self.failed = true;
            InterchangeError::Io {
                action: "writing the file",
                source,
            }
        })
    }
}

/// Items serialized before their document's head is known (its count and sum come last), kept as XML in an
/// anonymous temporary file, with their tally; [`DocumentWriter::with_body`] writes the document.
pub(crate) struct ItemBody {
    items: BufWriter<std::fs::File>,
    /// The currency of every item's amount.
    pub(crate) currency: Currency,
    pub(crate) tally: Tally,
    /// The item being prepared: [`Self::commit_item`] appends it.
    pub(crate) text: String,
}

impl ItemBody {
    /// An empty body whose items are in `currency` (ISO 4217 numeric).
    pub(crate) fn new(currency: u16) -> Result<Self> {
        let currency = Currency::from_numeric(currency)?;
        let file = tempfile::tempfile().map_err(InterchangeError::io("creating a body file"))?;
        Ok(Self {
            items: BufWriter::with_capacity(256 * 1024, file),
            currency,
            tally: Tally::new(0),
            text: String::with_capacity(4096),
        })
    }

    /// Refuses a body whose items are not in the head's `currency`; `field` is named in the error, as the head
    /// states it at `expected_from`.
    pub(crate) fn check_currency(
        &self,
        currency: Currency,
        (field, expected_from): (&'static str, &'static str),
    ) -> Result<()> {
        if self.currency == currency {
            return Ok(());
        }
        Err(InterchangeError::Mismatch {
            field,
            expected_from,
            expected: currency.numeric.to_string(),
            found: self.currency.numeric.to_string(),
        })
    }

    /// Appends the item prepared in [`Self::text`].
    pub(crate) fn commit_item(&mut self) -> Result<()> {
        self.items
            .write_all(self.text.as_bytes())
            .map_err(InterchangeError::io("writing a body file"))
    }

    /// The tally and the items written, from the first.
    fn into_items(self) -> Result<(Tally, BufReader<std::fs::File>)> {
        let mut items = self
            .items
            .into_inner()
            .map_err(|error| InterchangeError::io("writing a body file")(error.into_error()))?;
        items
            .rewind()
            .map_err(InterchangeError::io("rewinding a body file"))?;
        Ok((self.tally, BufReader::with_capacity(256 * 1024, items)))
    }
}

/// Serializes one item, as the element `element` on a line of its own, into `text` (cleared first).
pub(crate) fn item_text<T: Serialize>(
    element: &'static str,
    item: &T,
    text: &mut String,
) -> Result<()> {
    text.clear();
    let serializer = quick_xml::se::Serializer::with_root(&mut *text, Some(element))
        .map_err(|source| InterchangeError::Serialize { element, source })?;
    item.serialize(serializer)
        .map_err(|source| InterchangeError::Serialize { element, source })?;
    text.push('\n');
    Ok(())
}

fn closing_tags(path: &[&str]) -> String {
    path.iter().rev().map(|name| format!("</{name}>")).collect()
}

/// Reads a document's head, then hands out its items one at a time. Memory: the head, one item, one event.
pub(crate) struct ItemStream<R: BufRead> {
    reader: NsReader<R>,
    layout: &'static Layout,
    event: Vec<u8>,
    item: Tape,
    first_item_pending: bool,
    finished: bool,
}

/// The namespace an element's name resolved to.
enum Namespace {
    Message,
    Settlement,
    Other(String),
}

/// What an element met while reading the head is.
enum HeadElement {
    /// On the path from `Document` to the items' parent.
    Path,
    /// The first item.
    FirstItem,
    /// Part of the head (`GrpHdr`, `PmtInfId`, ...).
    Child,
    Unexpected,
}

impl<R: BufRead> ItemStream<R> {
    /// Reads up to the first item. Returns the stream, holding that item, and the head as a closed document.
    pub(crate) fn open(input: R, layout: &'static Layout) -> Result<(Self, String)> {
        let mut reader = NsReader::from_reader(input);
        // `<a/>` then reads as `<a></a>`: one shape to copy.
        reader.config_mut().expand_empty_elements = true;
        let mut stream = Self {
            reader,
            layout,
            event: Vec::with_capacity(1024),
            item: Tape::default(),
            first_item_pending: false,
            finished: false,
        };
        let head = stream.read_head()?;
        let head = String::from_utf8(head)
            .map_err(|error| InterchangeError::NotUtf8(error.utf8_error()))?;
        Ok((stream, head))
    }

    /// The next item, checked and recorded, or `None` once the items' parent closed and the rest of the document
    /// was checked.
    pub(crate) fn next_item(&mut self) -> Result<Option<&Tape>> {
        if self.finished {
            return Ok(None);
        }
        if core::mem::take(&mut self.first_item_pending) {
            return Ok(Some(&self.item));
        }
        self.item.clear();
        let layout = self.layout;
        loop {
            let (namespace, event) =
                next_event(&mut self.reader, &mut self.event, layout.namespace)?;
            match event {
                Event::Start(start) => {
                    let name = start.local_name();
                    if name.as_ref() != layout.item {
                        return Err(unexpected(name.as_ref(), "among the items"));
                    }
                    check_namespace(name.as_ref(), namespace, false, layout)?;
                    let limit = (MAX_ITEM_BYTES, layout.item);
                    let position = self.reader.buffer_position();
                    self.item.record(Event::Start(start), position, limit)?;
                    break;
                }
                Event::End(_) => {
                    self.read_trailer()?;
                    self.finished = true;
                    return Ok(None);
                }
                Event::Eof => {
                    return Err(truncated(layout.path.last().copied().unwrap_or("Document")));
                }
                other => skip_blank(&other, "among the items")?,
            }
        }
        capture_rest(
            &mut self.reader,
            &mut self.event,
            &mut self.item,
            (MAX_ITEM_BYTES, layout.item),
            layout,
        )?;
        Ok(Some(&self.item))
    }

    fn read_head(&mut self) -> Result<Vec<u8>> {
        let layout = self.layout;
        let mut head = Writer::new(Vec::with_capacity(4096));
        // The qualified names of the open path elements, to close the head as the file opened it.
        let mut open: Vec<String> = Vec::with_capacity(layout.path.len());
        loop {
            let (namespace, event) =
                next_event(&mut self.reader, &mut self.event, layout.namespace)?;
            let element = match event {
                Event::Start(start) => {
                    let targets = (&mut head, &mut self.item);
                    let position = self.reader.buffer_position();
                    copy_head_start(layout, (start, position), namespace, &mut open, targets)?
                }
                Event::End(_) => return Err(InterchangeError::NoItems(layout.description)),
                Event::Eof => {
                    let open_element = open
                        .len()
                        .checked_sub(1)
                        .and_then(|last| layout.path.get(last));
                    return Err(truncated(open_element.copied().unwrap_or("Document")));
                }
                other => {
                    skip_blank(&other, "between elements")?;
                    continue;
                }
            };
            let (reader, buffer) = (&mut self.reader, &mut self.event);
            match element {
                // Refused by `copy_head_start`.
                HeadElement::Path | HeadElement::Unexpected => {}
                HeadElement::Child => {
                    capture_rest(
                        reader,
                        buffer,
                        &mut head,
                        (MAX_HEAD_BYTES, "Document"),
                        layout,
                    )?;
                }
                HeadElement::FirstItem => {
                    let limit = (MAX_ITEM_BYTES, layout.item);
                    capture_rest(reader, buffer, &mut self.item, limit, layout)?;
                    self.first_item_pending = true;
                    for name in open.iter().rev() {
                        let end = Event::End(BytesEnd::new(name.as_str()));
                        head.record(end, 0, (MAX_HEAD_BYTES, "Document"))?;
                    }
                    return Ok(head.into_inner());
                }
            }
        }
    }

    /// After the items: only the closing tags of the items' parents, then the end of the file.
    fn read_trailer(&mut self) -> Result<()> {
        let layout = self.layout;
        let mut open = layout.path.len().saturating_sub(1);
        loop {
            let (_, event) = next_event(&mut self.reader, &mut self.event, layout.namespace)?;
            match event {
                Event::End(_) if open > 0 => open -= 1,
                Event::Start(start) => {
                    return Err(unexpected(start.local_name().as_ref(), "after the items"));
                }
                Event::Eof if open == 0 => return Ok(()),
                Event::Eof => {
                    return Err(truncated(
                        layout.path.get(open - 1).copied().unwrap_or("Document"),
                    ));
                }
                other => skip_blank(&other, "after the items")?,
            }
        }
    }
}

/// Checks a start tag met in the head and copies it: to the head, or, for the first item, to the item buffer.
fn copy_head_start(
    layout: &Layout,
    (start, position): (BytesStart<'_>, u64),
    namespace: Namespace,
    open: &mut Vec<String>,
    (head, item): (&mut Writer<Vec<u8>>, &mut Tape),
) -> Result<HeadElement> {
    const HEAD: (usize, &str) = (MAX_HEAD_BYTES, "Document");
    let element = {
        let name = start.local_name();
        if open.is_empty() {
            check_root(name.as_ref(), namespace, layout)?;
        } else {
            check_namespace(name.as_ref(), namespace, false, layout)?;
        }
        classify(layout, open.len(), name.as_ref())
    };
    match element {
        HeadElement::Path => {
            open.push(start.name().as_ref().to_owned());
            head.record(Event::Start(start), position, HEAD)?;
        }
        HeadElement::Child => head.record(Event::Start(start), position, HEAD)?,
        HeadElement::FirstItem => {
            item.record(Event::Start(start), position, (MAX_ITEM_BYTES, layout.item))?
        }
        HeadElement::Unexpected => {
            return Err(unexpected(
                start.local_name().as_ref(),
                "at the top of the document",
            ));
        }
    }
    Ok(element)
}

fn classify(layout: &Layout, depth: usize, name: &str) -> HeadElement {
    if layout
        .path
        .get(depth)
        .is_some_and(|expected| *expected == name)
    {
        HeadElement::Path
    } else if depth == layout.path.len() && name == layout.item {
        HeadElement::FirstItem
    } else if depth >= 2 {
        HeadElement::Child
    } else {
        HeadElement::Unexpected
    }
}

/// The next event, borrowing `buffer`, and for a start tag the namespace its name resolved to. Only start tags
/// are checked, so any other event answers an empty `Other` (resolving every end tag too cost a tenth of the
/// reading).
fn next_event<'b, R: BufRead>(
    reader: &mut NsReader<R>,
    buffer: &'b mut Vec<u8>,
    message_namespace: &str,
) -> Result<(Namespace, Event<'b>)> {
    buffer.clear();
    let position = reader.buffer_position();
    let event = reader
        .read_event_into(buffer)
        .map_err(|source| InterchangeError::Xml { position, source })?;
    let Event::Start(start) = &event else {
        return Ok((Namespace::Other(String::new()), event));
    };
    let namespace = match reader.resolver().resolve_element(start.name()).0 {
        ResolveResult::Bound(namespace) if namespace.as_ref() == message_namespace => {
            Namespace::Message
        }
        ResolveResult::Bound(namespace) if namespace.as_ref() == SETTLEMENT_NAMESPACE => {
            Namespace::Settlement
        }
        ResolveResult::Bound(namespace) => Namespace::Other(namespace.as_ref().to_owned()),
        ResolveResult::Unbound | ResolveResult::Unknown(_) => Namespace::Other(String::new()),
    };
    Ok((namespace, event))
}

/// Copies the rest of the element whose start tag the caller already copied into `out`, up to its end tag.
fn capture_rest<R: BufRead>(
    reader: &mut NsReader<R>,
    buffer: &mut Vec<u8>,
    out: &mut impl Capture,
    (limit, element): (usize, &'static str),
    layout: &'static Layout,
) -> Result<()> {
    let mut depth = 1usize;
    // Depth of the `Envlp` we are in: its content is in our settlement namespace.
    let mut envelope_depth: Option<usize> = None;
    while depth > 0 {
        let (namespace, event) = next_event(reader, buffer, layout.namespace)?;
        let position = reader.buffer_position();
        match event {
            Event::Start(start) => {
                let name = start.local_name();
                check_namespace(name.as_ref(), namespace, envelope_depth.is_some(), layout)?;
                if depth >= MAX_NESTING {
                    return Err(InterchangeError::TooDeep {
                        element,
                        limit: MAX_NESTING,
                    });
                }
                if name.as_ref() == "Envlp" && envelope_depth.is_none() {
                    envelope_depth = Some(depth + 1);
                }
                depth += 1;
                out.record(Event::Start(start), position, (limit, element))?;
            }
            Event::End(end) => {
                if envelope_depth == Some(depth) {
                    envelope_depth = None;
                }
                depth -= 1;
                out.record(Event::End(end), position, (limit, element))?;
            }
            event @ (Event::Text(_) | Event::CData(_) | Event::GeneralRef(_)) => {
                out.record(event, position, (limit, element))?
            }
            Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => return Err(truncated(element)),
            Event::DocType(_) => return Err(InterchangeError::DocType),
            Event::Decl(_) | Event::Empty(_) => {
                return Err(unexpected("?xml", "inside an element"));
            }
        }
    }
    Ok(())
}

fn check_root(name: &str, namespace: Namespace, layout: &Layout) -> Result<()> {
    match namespace {
        Namespace::Message if name == "Document" => Ok(()),
        Namespace::Message | Namespace::Settlement => Err(InterchangeError::WrongMessage {
            expected: layout.namespace,
            found: format!("<{name}>"),
        }),
        Namespace::Other(found) => Err(InterchangeError::WrongMessage {
            expected: layout.namespace,
            found: format!("<{name}> in namespace {found:?}"),
        }),
    }
}

/// Every element is in the message's namespace, but for those inside `SplmtryData/Envlp`, which are in ours.
fn check_namespace(
    name: &str,
    namespace: Namespace,
    in_envelope: bool,
    layout: &Layout,
) -> Result<()> {
    let (expected, found) = match (namespace, in_envelope) {
        (Namespace::Message, false) | (Namespace::Settlement, true) => return Ok(()),
        (Namespace::Message, true) => (SETTLEMENT_NAMESPACE, layout.namespace.to_owned()),
        (Namespace::Settlement, false) => (layout.namespace, SETTLEMENT_NAMESPACE.to_owned()),
        (Namespace::Other(found), true) => (SETTLEMENT_NAMESPACE, found),
        (Namespace::Other(found), false) => (layout.namespace, found),
    };
    Err(InterchangeError::WrongMessage {
        expected,
        found: format!("<{name}> in namespace {found:?}"),
    })
}

/// Between elements only blank text, comments, processing instructions and the XML declaration may appear.
fn skip_blank(event: &Event<'_>, context: &'static str) -> Result<()> {
    match event {
        Event::Text(text) if text.bytes().all(|byte| byte.is_ascii_whitespace()) => Ok(()),
        Event::Comment(_) | Event::PI(_) => Ok(()),
        Event::Decl(declaration) => check_declaration(declaration),
        Event::DocType(_) => Err(InterchangeError::DocType),
        _ => Err(InterchangeError::UnexpectedText { context }),
    }
}

fn check_declaration(declaration: &quick_xml::events::BytesDecl<'_>) -> Result<()> {
    match declaration.encoding() {
        None => Ok(()),
        Some(Ok(encoding)) if encoding.eq_ignore_ascii_case("UTF-8") => Ok(()),
        Some(Ok(encoding)) => Err(InterchangeError::Encoding(encoding.into_owned())),
        Some(Err(source)) => Err(InterchangeError::Xml {
            position: 0,
            source: source.into(),
        }),
    }
}

/// Where the reader copies what it checked: the head's XML, which serde reads as a document, or an item's tape.
trait Capture {
    /// Copies one event met at byte `position`, refusing to grow past `limit` bytes (`element` is named).
    fn record(
        &mut self,
        event: Event<'_>,
        position: u64,
        limit: (usize, &'static str),
    ) -> Result<()>;
}

impl Capture for Writer<Vec<u8>> {
    fn record(
        &mut self,
        event: Event<'_>,
        _: u64,
        (limit, element): (usize, &'static str),
    ) -> Result<()> {
        self.write_event(event)
            .map_err(InterchangeError::io("copying an element"))?;
        if self.get_ref().len() > limit {
            return Err(InterchangeError::ElementTooLarge { element, limit });
        }
        Ok(())
    }
}

impl Capture for Tape {
    fn record(
        &mut self,
        event: Event<'_>,
        position: u64,
        (limit, element): (usize, &'static str),
    ) -> Result<()> {
        let not_well_formed = |source: quick_xml::Error| InterchangeError::Xml { position, source };
        match event {
            Event::Start(start) => {
                self.start(start.local_name().as_ref());
                for attribute in start.attributes() {
                    let attribute = attribute.map_err(|error| not_well_formed(error.into()))?;
                    let value = attribute
                        .normalized_value(XmlVersion::Implicit1_0)
                        .map_err(not_well_formed)?;
                    self.attribute(attribute.key.as_ref(), &value);
                }
            }
            Event::End(_) => self.end(),
            Event::Text(text) => self.text(&text.xml10_content()),
            Event::CData(data) => self.text(&data.xml10_content()),
            Event::GeneralRef(reference) => {
                if let Some(character) = reference.resolve_char_ref().map_err(not_well_formed)? {
                    self.text(character.encode_utf8(&mut [0; 4]));
                } else if let Some(text) = resolve_predefined_entity(&reference) {
                    self.text(text);
                } else {
                    let entity =
                        EscapeError::UnrecognizedEntity(0..reference.len(), reference.to_string());
                    return Err(not_well_formed(entity.into()));
                }
            }
            _ => {}
        }
        if self.size() > limit {
            return Err(InterchangeError::ElementTooLarge { element, limit });
        }
        Ok(())
    }
}

fn unexpected(name: &str, context: &'static str) -> InterchangeError {
    InterchangeError::UnexpectedElement {
        element: name.to_owned(),
        context,
    }
}

fn truncated(open_element: &str) -> InterchangeError {
    InterchangeError::Truncated {
        open_element: open_element.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST_LAYOUT: Layout = Layout {
        namespace: "urn:test",
        path: &["Document", "List"],
        item: "It",
        description: "a test list",
    };

    /// The items of a test document holding `items`, each read as a `T` from its tape.
    fn read_items<T: for<'de> Deserialize<'de>>(items: &str) -> Result<Vec<T>> {
        let document = format!("<Document xmlns=\"urn:test\"><List>{items}</List></Document>");
        let (mut stream, _head) = ItemStream::open(document.as_bytes(), &TEST_LAYOUT)?;
        let mut read = Vec::new();
        while let Some(tape) = stream.next_item()? {
            let item = tape
                .deserialize()
                .map_err(|source| InterchangeError::Deserialize {
                    element: "It",
                    source,
                })?;
            read.push(item);
        }
        Ok(read)
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Named {
        #[serde(rename = "Nm")]
        name: String,
        #[serde(rename = "Amt", default)]
        amount: Option<TestAmount>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct TestAmount {
        #[serde(rename = "@Ccy")]
        currency: String,
        #[serde(rename = "$text")]
        value: String,
    }

    #[test]
    fn references_cdata_and_attributes_read_unescaped_and_text_trimmed() {
        let items = read_items::<Named>(concat!(
            "<It><Nm> A &amp; B&#x20;&#67;<![CDATA[<d>]]>\n</Nm><Amt Ccy=\"E&amp;R\"> 1.00 </Amt></It>",
            "<It><Nm>   </Nm></It>",
        ))
        .expect("well-formed items");
        assert_eq!(
            items,
            [
                Named {
                    name: "A & B C<d>".to_owned(),
                    amount: Some(TestAmount {
                        currency: "E&R".to_owned(),
                        value: "1.00".to_owned(),
                    }),
                },
                Named {
                    name: String::new(),
                    amount: None,
                },
            ]
        );
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Repeats {
        #[serde(rename = "X", default)]
        xs: Vec<String>,
        #[serde(rename = "Y")]
        y: String,
    }

    #[test]
    fn consecutive_children_form_a_sequence_and_unknown_ones_are_skipped() {
        let items = read_items::<Repeats>(concat!(
            "<It><X>1</X><X>2</X><Other><Deep>q</Deep></Other><Y>3</Y></It>",
            "<It><Y>4</Y></It>",
        ))
        .expect("well-formed items");
        assert_eq!(
            items,
            [
                Repeats {
                    xs: vec!["1".to_owned(), "2".to_owned()],
                    y: "3".to_owned(),
                },
                Repeats {
                    xs: Vec::new(),
                    y: "4".to_owned(),
                },
            ]
        );
    }

    #[test]
    fn an_element_where_text_belongs_and_a_repeated_field_are_refused() {
        let nested = read_items::<Named>("<It><Nm><B>x</B></Nm></It>");
        assert!(
            matches!(nested, Err(InterchangeError::Deserialize { .. })),
            "{nested:?}"
        );
        let twice = read_items::<Repeats>("<It><Y>1</Y><Y>2</Y></It>");
        assert!(
            matches!(twice, Err(InterchangeError::Deserialize { .. })),
            "{twice:?}"
        );
        let missing = read_items::<Repeats>("<It><X>1</X></It>");
        assert!(
            matches!(missing, Err(InterchangeError::Deserialize { .. })),
            "{missing:?}"
        );
    }

    #[test]
    fn an_unknown_entity_is_not_well_formed() {
        let unknown = read_items::<Named>("<It><Nm>a &nbsp; b</Nm></It>");
        assert!(
            matches!(unknown, Err(InterchangeError::Xml { .. })),
            "{unknown:?}"
        );
    }

    #[test]
    fn an_item_larger_than_the_limit_is_refused_while_it_is_read() {
        let long = "x".repeat(MAX_ITEM_BYTES + 1);
        let refused = read_items::<Named>(&format!("<It><Nm>{long}</Nm></It>"));
        assert!(
            matches!(refused, Err(InterchangeError::ElementTooLarge { .. })),
            "{refused:?}"
        );
    }
}
