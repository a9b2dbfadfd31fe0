//! The bytes of `>` and `<` lines: hex digits, wildcards, `*`, macros, variables (`{NAME}`) and captures
//! (`{NAME:N}`). A command is a [`CommandTemplate`] and an expected response a [`Pattern`]: both are parsed once,
//! and resolved against the script's [`Variables`] when the step runs, since a capture is only known then.

use std::collections::HashMap;
use std::fmt;

use apdu_spec::StatusWord;

use super::SyntaxError;

/// Longest byte string one macro (or one capture) may produce: enough for any extended-length APDU.
pub const MAX_MACRO_BYTES: usize = 65_536;

/// The values of a script's variables, as captures set them while it runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Variables(HashMap<String, Vec<u8>>);

impl Variables {
    /// No variables.
    pub fn new() -> Self {
        Self::default()
    }

    /// The bytes of `name`, if it has been set.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.0.get(name).map(Vec::as_slice)
    }

    /// Sets (or replaces) `name`.
    pub fn set(&mut self, name: &str, value: Vec<u8>) {
        self.0.insert(name.to_owned(), value);
    }
}

/// A variable used before anything set it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("variable `{0}` has no value")]
pub struct Undefined(pub String);

/// One piece of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Bytes as written (macros expanded).
    Bytes(Vec<u8>),
    /// `{NAME}`: the value of a variable when the step runs.
    Variable(String),
    /// `{NAME}` inside a definition, where `NAME` is the definition's `index`-th parameter: replaced by the
    /// argument when the definition is called, so it never reaches the runner.
    Parameter {
        /// Position in the definition's parameter list.
        index: usize,
        /// The parameter's name, for display.
        name: String,
    },
}

/// The text of a `>` line: bytes and variables, expanded when the step runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandTemplate {
    pieces: Vec<Piece>,
}

impl CommandTemplate {
    /// Parses the text of a `>` line (without the `>` and without a comment).
    pub fn parse(text: &str) -> Result<Self, SyntaxError> {
        let template = Self::parse_allowing_empty(text)?;
        if template.is_empty() {
            return Err(SyntaxError::EmptyCommand);
        }
        Ok(template)
    }

    /// Parses command bytes that may come to nothing (`(A5*0)`), as a definition's argument may.
    pub(crate) fn parse_allowing_empty(text: &str) -> Result<Self, SyntaxError> {
        let mut pieces: Vec<Piece> = Vec::new();
        for element in elements(text, Line::Command)? {
            match element {
                Element::Byte(byte) => match pieces.last_mut() {
                    Some(Piece::Bytes(bytes)) => bytes.push(byte.value),
                    _ => pieces.push(Piece::Bytes(vec![byte.value])),
                },
                Element::Variable(name) => pieces.push(Piece::Variable(name)),
                // `elements` refuses these in commands.
                Element::Star | Element::Capture { .. } => {}
            }
        }
        Ok(Self { pieces })
    }

    /// Whether the template can only ever expand to nothing.
    fn is_empty(&self) -> bool {
        self.pieces
            .iter()
            .all(|piece| matches!(piece, Piece::Bytes(bytes) if bytes.is_empty()))
    }

    /// The command with every variable replaced by its value.
    pub fn expand(&self, variables: &Variables) -> Result<Vec<u8>, Undefined> {
        let mut bytes = Vec::new();
        for piece in &self.pieces {
            match piece {
                Piece::Bytes(literal) => bytes.extend_from_slice(literal),
                Piece::Variable(name) | Piece::Parameter { name, .. } => bytes
                    .extend_from_slice(variables.get(name).ok_or_else(|| Undefined(name.clone()))?),
            }
        }
        Ok(bytes)
    }

    /// The names of the variables the command uses.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|piece| match piece {
            Piece::Variable(name) => Some(name.as_str()),
            _ => None,
        })
    }

    /// Turns references to `parameters` into [`Piece::Parameter`]s (a definition's body).
    pub(crate) fn bind(&mut self, parameters: &[String]) {
        for piece in &mut self.pieces {
            if let Piece::Variable(name) = piece
                && let Some(index) = parameters.iter().position(|p| p == name)
            {
                *piece = Piece::Parameter {
                    index,
                    name: name.clone(),
                };
            }
        }
    }

    /// The template with each parameter replaced by its argument (a definition being called).
    pub(crate) fn substitute(&self, arguments: &[CommandTemplate]) -> Self {
        let mut pieces = Vec::with_capacity(self.pieces.len());
        for piece in &self.pieces {
            match piece {
                Piece::Parameter { index, .. } => match arguments.get(*index) {
                    Some(argument) => pieces.extend(argument.pieces.iter().cloned()),
                    None => pieces.push(piece.clone()),
                },
                other => pieces.push(other.clone()),
            }
        }
        Self { pieces }
    }
}

impl fmt::Display for CommandTemplate {
    /// As a script would write it, macros expanded: `00 70 80 {CHANNEL}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, piece) in self.pieces.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            match piece {
                Piece::Bytes(bytes) => f.write_str(&card_client::hex::spaced(bytes))?,
                Piece::Variable(name) | Piece::Parameter { name, .. } => write!(f, "{{{name}}}")?,
            }
        }
        Ok(())
    }
}

/// Parses the text of a `>` line that uses no variables (without the `>` and without a comment).
pub fn parse_command(text: &str) -> Result<Vec<u8>, SyntaxError> {
    let template = CommandTemplate::parse(text)?;
    match template.variables().next() {
        Some(name) => Err(SyntaxError::UnexpectedVariable(name.to_owned())),
        None => template
            .expand(&Variables::new())
            .map_err(|Undefined(name)| SyntaxError::UnexpectedVariable(name)),
    }
}

/// One byte of a pattern: the response byte `b` matches when `b & mask == value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatternByte {
    /// The required bits (zero where the mask is zero).
    pub value: u8,
    /// Which bits are checked: `F0` for `6X`, `00` for `XX`, `FF` for an exact byte.
    pub mask: u8,
}

impl PatternByte {
    /// A byte that must be exactly `value`.
    pub const fn exact(value: u8) -> Self {
        Self { value, mask: 0xFF }
    }

    /// Any byte.
    pub const ANY: Self = Self { value: 0, mask: 0 };

    /// Whether `byte` matches.
    pub const fn matches(self, byte: u8) -> bool {
        byte & self.mask == self.value
    }

    /// Whether every bit is checked.
    pub const fn is_exact(self) -> bool {
        self.mask == 0xFF
    }
}

impl fmt::Display for PatternByte {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for shift in [4u8, 0] {
            if (self.mask >> shift) & 0xF == 0xF {
                write!(f, "{:X}", (self.value >> shift) & 0xF)?;
            } else {
                f.write_str("X")?;
            }
        }
        Ok(())
    }
}

/// One element of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PatternElement {
    Byte(PatternByte),
    Star,
    /// Must equal the variable's bytes.
    Variable(String),
    /// Must equal the definition argument's bytes (after the call, the argument's own elements).
    Parameter {
        index: usize,
        name: String,
    },
    /// Any `len` bytes, kept as the variable `name` once the whole response matches.
    Capture {
        name: String,
        len: usize,
    },
}

/// An expected response: bytes, wildcards, at most one `*`, variables and captures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    source: String,
    elements: Vec<PatternElement>,
}

/// A capture's place in a response: from the start (before the `*`) or from the end (after it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Anchor {
    Start(usize),
    End(usize),
}

/// A pattern with its variables resolved: `head`, then (with a `*`) any bytes, then `tail`.
struct Resolved<'a> {
    head: Vec<PatternByte>,
    tail: Option<Vec<PatternByte>>,
    captures: Vec<(&'a str, Anchor, usize)>,
}

impl Pattern {
    /// Parses the text of a `<` line (without the `<` and without a comment).
    pub fn parse(text: &str) -> Result<Self, SyntaxError> {
        let mut elements = Vec::new();
        for element in elements_of(text)? {
            if element == PatternElement::Star && elements.contains(&PatternElement::Star) {
                return Err(SyntaxError::SecondStar);
            }
            elements.push(element);
        }
        if elements.is_empty() {
            return Err(SyntaxError::EmptyPattern);
        }
        Ok(Self {
            source: text.trim().to_owned(),
            elements,
        })
    }

    /// The pattern as the script wrote it (macros not expanded).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the whole of `response` matches a pattern that uses no variables.
    pub fn matches(&self, response: &[u8]) -> bool {
        self.mismatch(response).is_none()
    }

    /// Why `response` does not match a pattern that uses no variables, or `None` when it does.
    pub fn mismatch(&self, response: &[u8]) -> Option<Mismatch> {
        self.check(response, &Variables::new()).err()
    }

    /// Matches `response` against the pattern with the values of `variables`; returns what the pattern's
    /// captures took (name and bytes), or why it does not match.
    pub fn check(
        &self,
        response: &[u8],
        variables: &Variables,
    ) -> Result<Vec<(String, Vec<u8>)>, Mismatch> {
        let resolved = self.resolve(variables)?;
        if let Some(mismatch) = resolved.mismatch(response) {
            return Err(mismatch);
        }
        Ok(resolved
            .captures
            .iter()
            .filter_map(|&(name, anchor, len)| {
                let start = match anchor {
                    Anchor::Start(offset) => offset,
                    Anchor::End(from_end) => response.len().checked_sub(from_end)?,
                };
                let bytes = response.get(start..start.checked_add(len)?)?;
                Some((name.to_owned(), bytes.to_vec()))
            })
            .collect())
    }

    fn resolve<'a>(&'a self, variables: &Variables) -> Result<Resolved<'a>, Mismatch> {
        let mut resolved = Resolved {
            head: Vec::new(),
            tail: None,
            captures: Vec::new(),
        };
        // Captures after the `*` are anchored at the end: their offsets are fixed once the tail is complete.
        let mut tail_captures = Vec::new();
        for element in &self.elements {
            let side = resolved.tail.as_mut().unwrap_or(&mut resolved.head);
            match element {
                PatternElement::Byte(byte) => side.push(*byte),
                PatternElement::Star => resolved.tail = Some(Vec::new()),
                PatternElement::Variable(name) | PatternElement::Parameter { name, .. } => {
                    let value = variables
                        .get(name)
                        .ok_or_else(|| Mismatch::Undefined(name.clone()))?;
                    side.extend(value.iter().map(|&b| PatternByte::exact(b)));
                }
                PatternElement::Capture { name, len } => {
                    let at = side.len();
                    side.extend(std::iter::repeat_n(PatternByte::ANY, *len));
                    if resolved.tail.is_some() {
                        tail_captures.push((name.as_str(), at, *len));
                    } else {
                        resolved
                            .captures
                            .push((name.as_str(), Anchor::Start(at), *len));
                    }
                }
            }
        }
        let tail_len = resolved.tail.as_ref().map_or(0, Vec::len);
        resolved.captures.extend(
            tail_captures
                .into_iter()
                .map(|(name, at, len)| (name, Anchor::End(tail_len - at), len)),
        );
        Ok(resolved)
    }

    /// The status word the pattern requires, when its last two bytes are exact and anchored at the end.
    pub fn exact_status_word(&self) -> Option<StatusWord> {
        match self.elements.as_slice() {
            [.., PatternElement::Byte(sw1), PatternElement::Byte(sw2)]
                if sw1.is_exact() && sw2.is_exact() =>
            {
                Some(StatusWord::from_bytes(sw1.value, sw2.value))
            }
            _ => None,
        }
    }

    /// The names of the variables the pattern uses (not those it captures).
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.elements.iter().filter_map(|element| match element {
            PatternElement::Variable(name) => Some(name.as_str()),
            _ => None,
        })
    }

    /// The names of the variables the pattern captures.
    pub fn captures(&self) -> impl Iterator<Item = &str> {
        self.elements.iter().filter_map(|element| match element {
            PatternElement::Capture { name, .. } => Some(name.as_str()),
            _ => None,
        })
    }

    /// Turns references to `parameters` into parameters (a definition's body); a capture into a parameter's
    /// name is refused, since the parameter is replaced before the script runs.
    pub(crate) fn bind(&mut self, parameters: &[String]) -> Result<(), SyntaxError> {
        for element in &mut self.elements {
            match element {
                PatternElement::Variable(name) => {
                    if let Some(index) = parameters.iter().position(|p| p == name) {
                        *element = PatternElement::Parameter {
                            index,
                            name: name.clone(),
                        };
                    }
                }
                PatternElement::Capture { name, .. } if parameters.contains(name) => {
                    return Err(SyntaxError::CaptureIntoParameter(name.clone()));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The pattern with each parameter replaced by its argument's bytes and variables.
    pub(crate) fn substitute(&self, arguments: &[CommandTemplate]) -> Self {
        let mut elements = Vec::with_capacity(self.elements.len());
        for element in &self.elements {
            let argument = match element {
                PatternElement::Parameter { index, .. } => arguments.get(*index),
                _ => None,
            };
            let Some(argument) = argument else {
                elements.push(element.clone());
                continue;
            };
            for piece in &argument.pieces {
                match piece {
                    Piece::Bytes(bytes) => elements.extend(
                        bytes
                            .iter()
                            .map(|&b| PatternElement::Byte(PatternByte::exact(b))),
                    ),
                    Piece::Variable(name) => elements.push(PatternElement::Variable(name.clone())),
                    Piece::Parameter { index, name } => elements.push(PatternElement::Parameter {
                        index: *index,
                        name: name.clone(),
                    }),
                }
            }
        }
        Self {
            source: self.source.clone(),
            elements,
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Resolved<'_> {
    fn mismatch(&self, response: &[u8]) -> Option<Mismatch> {
        let fixed = self.head.len() + self.tail.as_ref().map_or(0, Vec::len);
        let length_ok = match self.tail {
            Some(_) => response.len() >= fixed,
            None => response.len() == fixed,
        };
        if !length_ok {
            return Some(Mismatch::Length {
                actual: response.len(),
                expected: fixed,
                at_least: self.tail.is_some(),
            });
        }
        let head_pairs = self.head.iter().zip(response).enumerate();
        let tail_start = response.len() - self.tail.as_ref().map_or(0, Vec::len);
        let tail_pairs = self
            .tail
            .iter()
            .flatten()
            .zip(response.iter().skip(tail_start))
            .enumerate()
            .map(|(i, pair)| (tail_start + i, pair));
        head_pairs
            .chain(tail_pairs)
            .find(|(_, (want, got))| !want.matches(**got))
            .map(|(offset, (want, &got))| Mismatch::Byte {
                offset,
                actual: got,
                expected: *want,
            })
    }
}

/// Why a response does not match a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// The response has the wrong length.
    Length {
        /// Bytes received.
        actual: usize,
        /// Bytes the pattern fixes.
        expected: usize,
        /// Whether the pattern has a `*` (so `expected` is a minimum).
        at_least: bool,
    },
    /// A byte differs.
    Byte {
        /// Offset in the response (0-based).
        offset: usize,
        /// The byte received.
        actual: u8,
        /// What the pattern wants there.
        expected: PatternByte,
    },
    /// The pattern uses a variable that has no value (a parsed script never does: the parser checks).
    Undefined(String),
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Length {
                actual,
                expected,
                at_least,
            } => {
                let bound = if *at_least { "at least" } else { "exactly" };
                write!(
                    f,
                    "response is {actual} byte(s); the pattern needs {bound} {expected}"
                )
            }
            Self::Byte {
                offset,
                actual,
                expected,
            } => write!(
                f,
                "byte {offset} is {actual:02X}; the pattern wants {expected}"
            ),
            Self::Undefined(name) => write!(f, "variable `{name}` has no value"),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Line {
    Command,
    Pattern,
}

#[derive(Debug, PartialEq, Eq)]
enum Element {
    Byte(PatternByte),
    Star,
    Variable(String),
    Capture { name: String, len: usize },
}

fn elements_of(text: &str) -> Result<Vec<PatternElement>, SyntaxError> {
    Ok(elements(text, Line::Pattern)?
        .into_iter()
        .map(|element| match element {
            Element::Byte(byte) => PatternElement::Byte(byte),
            Element::Star => PatternElement::Star,
            Element::Variable(name) => PatternElement::Variable(name),
            Element::Capture { name, len } => PatternElement::Capture { name, len },
        })
        .collect())
}

/// Splits a `>` or `<` line into bytes (macros expanded), `*`, variables and captures.
fn elements(text: &str, line: Line) -> Result<Vec<Element>, SyntaxError> {
    let mut out = Vec::new();
    // The high nibble (value, mask) of a byte whose low nibble has not come yet.
    let mut high: Option<(u8, u8)> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        let nibble = match c {
            c if c.is_whitespace() => {
                // Commands separate whole bytes; patterns ignore whitespace entirely.
                if line == Line::Command && high.is_some() {
                    return Err(SyntaxError::SpaceInsideByte);
                }
                continue;
            }
            'X' | 'x' | '?' | '*' if line == Line::Command => {
                return Err(SyntaxError::WildcardInCommand(c));
            }
            'X' | 'x' | '?' => (0, 0),
            '*' | '(' | '{' if high.is_some() => return Err(SyntaxError::NotAtByteBoundary(c)),
            '*' => {
                out.push(Element::Star);
                continue;
            }
            '(' => {
                let inner = enclosed(&mut chars, '(', ')').ok_or(SyntaxError::UnclosedMacro)?;
                out.extend(
                    expand_macro(&inner)?
                        .into_iter()
                        .map(|b| Element::Byte(PatternByte::exact(b))),
                );
                continue;
            }
            '{' => {
                let inner = enclosed(&mut chars, '{', '}').ok_or(SyntaxError::UnclosedVariable)?;
                out.push(variable(&inner, line)?);
                continue;
            }
            c => match c.to_digit(16) {
                // A hex digit is below 16, so it fits a nibble.
                Some(d) => (d as u8, 0xF),
                None => return Err(SyntaxError::UnexpectedChar(c)),
            },
        };
        match high.take() {
            None => high = Some(nibble),
            Some((value, mask)) => out.push(Element::Byte(PatternByte {
                value: value << 4 | nibble.0,
                mask: mask << 4 | nibble.1,
            })),
        }
    }
    if high.is_some() {
        return Err(SyntaxError::OddDigits);
    }
    Ok(out)
}

/// The text up to the closing `close`, or `None` when it never comes (or `open` comes first: no nesting).
fn enclosed(chars: &mut std::str::Chars<'_>, open: char, close: char) -> Option<String> {
    let mut inner = String::new();
    for c in chars.by_ref() {
        match c {
            c if c == close => return Some(inner),
            c if c == open => return None,
            c => inner.push(c),
        }
    }
    None
}

/// Whether `name` can name a variable, a parameter or a definition: a letter or `_`, then letters, digits, `_`
/// or `-`.
pub fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `{NAME}` (a variable's value) or, in patterns, `{NAME:N}` (capture `N` bytes into `NAME`).
fn variable(inner: &str, line: Line) -> Result<Element, SyntaxError> {
    let bad = |reason: &str| SyntaxError::BadVariable {
        text: inner.to_owned(),
        reason: reason.to_owned(),
    };
    let (name, length) = match inner.split_once(':') {
        Some((name, length)) => (name.trim(), Some(length.trim())),
        None => (inner.trim(), None),
    };
    if !is_name(name) {
        return Err(bad(
            "a name is a letter or `_`, then letters, digits, `_` or `-`",
        ));
    }
    let Some(length) = length else {
        return Ok(Element::Variable(name.to_owned()));
    };
    if line == Line::Command {
        return Err(SyntaxError::CaptureInCommand(name.to_owned()));
    }
    match parse_count(length) {
        Ok(0) => Err(bad("a capture takes at least one byte")),
        Ok(len) => Ok(Element::Capture {
            name: name.to_owned(),
            len,
        }),
        Err(reason) => Err(bad(&reason)),
    }
}

/// Expands the text inside `( )`: `HH*N` or `SEQ S N`.
fn expand_macro(inner: &str) -> Result<Vec<u8>, SyntaxError> {
    let bad = |reason: &str| SyntaxError::BadMacro {
        text: inner.to_owned(),
        reason: reason.to_owned(),
    };
    let words: Vec<&str> = inner.split_whitespace().collect();
    if let [keyword, rest @ ..] = words.as_slice()
        && keyword.eq_ignore_ascii_case("SEQ")
    {
        let [start, count] = rest else {
            return Err(bad("expected `(SEQ S N)` with decimal start S and count N"));
        };
        let start: u8 = start
            .parse()
            .map_err(|_| bad("start S must be a decimal number from 0 to 255"))?;
        let count = parse_count(count).map_err(|r| bad(&r))?;
        // Truncating to u8 is the point: the sequence wraps modulo 256.
        return Ok((0..count).map(|i| start.wrapping_add(i as u8)).collect());
    }
    let Some((byte, count)) = inner.split_once('*') else {
        return Err(bad("expected `(HH*N)` or `(SEQ S N)`"));
    };
    let byte = byte.trim();
    let byte = match (byte.len(), u8::from_str_radix(byte, 16)) {
        (2, Ok(b)) => b,
        _ => return Err(bad("HH in `(HH*N)` must be exactly two hex digits")),
    };
    let count = parse_count(count.trim()).map_err(|r| bad(&r))?;
    Ok(vec![byte; count])
}

fn parse_count(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n <= MAX_MACRO_BYTES => Ok(n),
        Ok(_) => Err(format!("count is larger than {MAX_MACRO_BYTES}")),
        Err(_) => Err(format!("count `{text}` is not a decimal number")),
    }
}
