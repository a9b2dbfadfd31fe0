//! The conformance script format (`*.apdu`): commands to send and the responses they must get.
//!
//! The full format is documented in `tests/conformance/README.md`. In short, line by line:
//!
//! ```text
//! # Title of the script (its first comment line)
//! > 00 A4 04 00 08 A000000151000000 00    # a command APDU, hex
//! < 6F XX * 90 00                          # the response it must get: X/? any nibble, * any bytes
//! > 80 E2 00 00 (A5*300) 00                # (HH*N) repeats a byte, (SEQ S N) counts up
//! < 90 00
//! reset                                    # warm reset; an optional `<` line checks the ATR
//! power off
//! power on
//! < 3B *
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use apdu_spec::StatusWord;

use card_client::hex;

/// Longest byte string one macro may produce: enough for any extended-length APDU.
pub const MAX_MACRO_BYTES: usize = 65_536;

/// A parsed script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// The file name, e.g. `01-select.apdu`.
    pub name: String,
    /// Where the script was read from.
    pub path: PathBuf,
    /// The text of the first comment line that has any, e.g. `SELECT by AID`.
    pub title: Option<String>,
    /// What the script does, in order.
    pub steps: Vec<Step>,
}

impl Script {
    /// How many command APDUs the script sends when it passes.
    pub fn command_count(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| matches!(s.kind, StepKind::Exchange { .. }))
            .count()
    }
}

/// One step and the line it was written on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Line of the `>`, `reset`, `power off` or `power on`.
    pub line: usize,
    /// What to do.
    pub kind: StepKind,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepKind {
    /// Send `command`; the response must match `expected`.
    Exchange {
        /// The command APDU, macros expanded.
        command: Vec<u8>,
        /// The `<` line that follows it.
        expected: Expectation,
    },
    /// Warm reset; the ATR must match `expected_atr` when given.
    Reset {
        /// The optional `<` line after `reset`.
        expected_atr: Option<Expectation>,
    },
    /// Remove power.
    PowerOff,
    /// Power on; the ATR must match `expected_atr` when given.
    PowerOn {
        /// The optional `<` line after `power on`.
        expected_atr: Option<Expectation>,
    },
}

impl fmt::Display for StepKind {
    /// The step as a script would write it, macros expanded: `> 00 A4 ...`, `reset`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exchange { command, .. } => write!(f, "> {}", hex::spaced(command)),
            Self::Reset { .. } => f.write_str("reset"),
            Self::PowerOff => f.write_str("power off"),
            Self::PowerOn { .. } => f.write_str("power on"),
        }
    }
}

/// A `<` line: the pattern and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    /// Line of the `<` (1-based).
    pub line: usize,
    /// The pattern the response must match.
    pub pattern: Pattern,
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

/// An expected response: `head`, then (when the pattern has a `*`) any bytes, then `tail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    source: String,
    head: Vec<PatternByte>,
    /// `Some` when the pattern has a `*`: the bytes that must end the response.
    tail: Option<Vec<PatternByte>>,
}

impl Pattern {
    /// Parses the text of a `<` line (without the `<` and without a comment).
    pub fn parse(text: &str) -> Result<Self, SyntaxError> {
        let mut head = Vec::new();
        let mut tail = None;
        for element in elements(text, Line::Pattern)? {
            match element {
                Element::Byte(byte) => tail.as_mut().unwrap_or(&mut head).push(byte),
                Element::Star if tail.is_some() => return Err(SyntaxError::SecondStar),
                Element::Star => tail = Some(Vec::new()),
            }
        }
        if head.is_empty() && tail.is_none() {
            return Err(SyntaxError::EmptyPattern);
        }
        Ok(Self {
            source: text.trim().to_owned(),
            head,
            tail,
        })
    }

    /// The pattern as the script wrote it (macros not expanded).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the whole of `response` matches the pattern.
    pub fn matches(&self, response: &[u8]) -> bool {
        self.mismatch(response).is_none()
    }

    /// Why `response` does not match, or `None` when it does.
    pub fn mismatch(&self, response: &[u8]) -> Option<Mismatch> {
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

    /// The status word the pattern requires, when its last two bytes are exact and anchored at the end.
    pub fn exact_status_word(&self) -> Option<StatusWord> {
        let end = self.tail.as_ref().unwrap_or(&self.head);
        match end.as_slice() {
            [.., sw1, sw2] if sw1.is_exact() && sw2.is_exact() => {
                Some(StatusWord::from_bytes(sw1.value, sw2.value))
            }
            _ => None,
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Why a response does not match a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
        }
    }
}

/// What is wrong with one line (or with the script as a whole).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    /// Neither a comment, a `>`/`<` line nor a keyword.
    #[error(
        "unrecognised line `{0}`: expected `> command`, `< response`, `reset`, `power off`, `power on` or a `#` comment"
    )]
    UnknownLine(String),
    /// A character that has no meaning where it is.
    #[error("unexpected character `{0}`")]
    UnexpectedChar(char),
    /// `X`, `?` or `*` in a command, which must be fully known.
    #[error("wildcard `{0}` is only allowed in `<` patterns, not in commands")]
    WildcardInCommand(char),
    /// The hex digits end in half a byte.
    #[error("odd number of hex digits: the last byte is incomplete")]
    OddDigits,
    /// Whitespace between the two digits of a command byte.
    #[error("space inside a byte: separate whole bytes only")]
    SpaceInsideByte,
    /// A `*` or a macro between the two digits of a byte.
    #[error("`{0}` must stand at a byte boundary, not between the two digits of a byte")]
    NotAtByteBoundary(char),
    /// More than one `*` on a line.
    #[error("only one `*` is allowed per pattern")]
    SecondStar,
    /// A `(` without its `)`.
    #[error("`(` without a closing `)`")]
    UnclosedMacro,
    /// The text between parentheses is not a known macro.
    #[error("bad macro `({text})`: {reason}")]
    BadMacro {
        /// What was inside the parentheses.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `>` with no bytes.
    #[error("empty command: `>` needs the command bytes")]
    EmptyCommand,
    /// A `<` with nothing to match.
    #[error("empty pattern: `<` needs the expected response (write `*` to accept any)")]
    EmptyPattern,
    /// A `>` not followed by its `<`.
    #[error("command has no expected response: the next line must be `< ...`, found {found}")]
    MissingResponse {
        /// What came instead: `` `reset` at line 9 `` or `end of file`.
        found: String,
    },
    /// A `<` that follows nothing it could check.
    #[error("`<` line does not follow a command, `reset` or `power on`")]
    UnexpectedResponse,
    /// A file with no steps at all.
    #[error("script has no steps: it would pass without touching the card")]
    NoSteps,
}

/// Why a script could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not UTF-8.
    #[error("{}:{line}: not valid UTF-8", path.display())]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// Line of the first invalid byte.
        line: usize,
    },
    /// A syntax error.
    #[error("{}:{line}: {error}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The line (1-based).
        line: usize,
        /// What is wrong.
        error: SyntaxError,
    },
}

impl ScriptError {
    /// The line the error is on, when it is about one line.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::Io { .. } => None,
            Self::NotUtf8 { line, .. } | Self::Syntax { line, .. } => Some(*line),
        }
    }
}

/// Reads and parses the script at `path`.
pub fn parse_file(path: &Path) -> Result<Script, ScriptError> {
    let bytes = std::fs::read(path).map_err(|source| ScriptError::Io {
        path: path.to_owned(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = e
            .as_bytes()
            .get(..e.utf8_error().valid_up_to())
            .unwrap_or(&[]);
        ScriptError::NotUtf8 {
            path: path.to_owned(),
            line: 1 + valid.iter().filter(|&&b| b == b'\n').count(),
        }
    })?;
    parse_str(path, &text)
}

/// Reads and parses every file in `paths`, reporting every broken one rather than only the first.
pub fn parse_files(paths: &[PathBuf]) -> Result<Vec<Script>, Vec<ScriptError>> {
    let mut scripts = Vec::with_capacity(paths.len());
    let mut errors = Vec::new();
    for path in paths {
        match parse_file(path) {
            Ok(script) => scripts.push(script),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(scripts)
    } else {
        Err(errors)
    }
}

/// Parses script `text` read from `path` (which names the script and its errors).
pub fn parse_str(path: &Path, text: &str) -> Result<Script, ScriptError> {
    let syntax = |line, error| ScriptError::Syntax {
        path: path.to_owned(),
        line,
        error,
    };
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let mut title = None;
    let mut steps: Vec<Step> = Vec::new();
    // A `>` waiting for its `<`: its line and bytes.
    let mut awaiting_response: Option<(usize, Vec<u8>)> = None;
    // Whether the last step may still take an optional `<` (after `reset` / `power on`).
    let mut atr_check_open = false;

    for (index, raw) in text.lines().enumerate() {
        let line_number = index + 1;
        let (content, comment) = match raw.split_once('#') {
            Some((content, comment)) => (content.trim(), Some(comment.trim())),
            None => (raw.trim(), None),
        };
        if content.is_empty() {
            if title.is_none() {
                title = comment.filter(|c| !c.is_empty()).map(str::to_owned);
            }
            continue;
        }

        if let Some(pattern_text) = content.strip_prefix('<') {
            let pattern = Pattern::parse(pattern_text).map_err(|e| syntax(line_number, e))?;
            let expectation = Expectation {
                line: line_number,
                pattern,
            };
            if let Some((command_line, command)) = awaiting_response.take() {
                steps.push(Step {
                    line: command_line,
                    kind: StepKind::Exchange {
                        command,
                        expected: expectation,
                    },
                });
            } else if atr_check_open {
                match steps.last_mut().map(|s| &mut s.kind) {
                    Some(StepKind::Reset { expected_atr } | StepKind::PowerOn { expected_atr }) => {
                        *expected_atr = Some(expectation);
                    }
                    _ => return Err(syntax(line_number, SyntaxError::UnexpectedResponse)),
                }
            } else {
                return Err(syntax(line_number, SyntaxError::UnexpectedResponse));
            }
            atr_check_open = false;
            continue;
        }

        if let Some((command_line, _)) = awaiting_response {
            return Err(syntax(
                command_line,
                SyntaxError::MissingResponse {
                    found: format!("`{content}` at line {line_number}"),
                },
            ));
        }

        if let Some(command_text) = content.strip_prefix('>') {
            let command = parse_command(command_text).map_err(|e| syntax(line_number, e))?;
            awaiting_response = Some((line_number, command));
            atr_check_open = false;
            continue;
        }

        // Keywords: case and spacing do not matter (`Power  On`).
        let keyword = content
            .split_whitespace()
            .map(str::to_ascii_lowercase)
            .collect::<Vec<_>>()
            .join(" ");
        let kind = match keyword.as_str() {
            "reset" => StepKind::Reset { expected_atr: None },
            "power off" => StepKind::PowerOff,
            "power on" => StepKind::PowerOn { expected_atr: None },
            _ => {
                return Err(syntax(
                    line_number,
                    SyntaxError::UnknownLine(content.to_owned()),
                ));
            }
        };
        atr_check_open = !matches!(kind, StepKind::PowerOff);
        steps.push(Step {
            line: line_number,
            kind,
        });
    }

    if let Some((command_line, _)) = awaiting_response {
        return Err(syntax(
            command_line,
            SyntaxError::MissingResponse {
                found: "end of file".to_owned(),
            },
        ));
    }
    if steps.is_empty() {
        return Err(syntax(text.lines().count().max(1), SyntaxError::NoSteps));
    }
    Ok(Script {
        name: path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
        path: path.to_owned(),
        title,
        steps,
    })
}

/// Parses the text of a `>` line (without the `>` and without a comment).
pub fn parse_command(text: &str) -> Result<Vec<u8>, SyntaxError> {
    let bytes: Vec<u8> = elements(text, Line::Command)?
        .into_iter()
        .filter_map(|e| match e {
            // `elements` only yields exact bytes for commands.
            Element::Byte(b) => Some(b.value),
            Element::Star => None,
        })
        .collect();
    if bytes.is_empty() {
        return Err(SyntaxError::EmptyCommand);
    }
    Ok(bytes)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Line {
    Command,
    Pattern,
}

enum Element {
    Byte(PatternByte),
    Star,
}

/// Splits a `>` or `<` line into bytes (macros expanded) and `*`.
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
            '*' => {
                if high.is_some() {
                    return Err(SyntaxError::NotAtByteBoundary('*'));
                }
                out.push(Element::Star);
                continue;
            }
            '(' => {
                if high.is_some() {
                    return Err(SyntaxError::NotAtByteBoundary('('));
                }
                let mut inner = String::new();
                let mut closed = false;
                for c in chars.by_ref() {
                    match c {
                        ')' => {
                            closed = true;
                            break;
                        }
                        // Macros do not nest: a second `(` means the first was never closed.
                        '(' => break,
                        c => inner.push(c),
                    }
                }
                if !closed {
                    return Err(SyntaxError::UnclosedMacro);
                }
                out.extend(
                    expand_macro(&inner)?
                        .into_iter()
                        .map(|b| Element::Byte(PatternByte::exact(b))),
                );
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Script, ScriptError> {
        parse_str(Path::new("dir/test.apdu"), text)
    }

    fn syntax_error(text: &str) -> (usize, SyntaxError) {
        match parse(text) {
            Err(ScriptError::Syntax { line, error, .. }) => (line, error),
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    fn pattern(text: &str) -> Pattern {
        Pattern::parse(text).unwrap()
    }

    fn exchange(step: &Step) -> (&[u8], &Expectation) {
        match &step.kind {
            StepKind::Exchange { command, expected } => (command, expected),
            other => panic!("not an exchange: {other:?}"),
        }
    }

    // ---- commands ----

    #[test]
    fn command_hex_is_case_insensitive_and_spaced_between_bytes() {
        assert_eq!(
            parse_command(" 00a4 04 00\t08 A000000151000000 00 ").unwrap(),
            [
                0x00, 0xA4, 0x04, 0x00, 0x08, 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00, 0x00
            ]
        );
    }

    #[test]
    fn command_errors() {
        assert_eq!(parse_command("00 A"), Err(SyntaxError::OddDigits));
        assert_eq!(parse_command("0 0A4"), Err(SyntaxError::SpaceInsideByte));
        assert_eq!(
            parse_command("00 XX"),
            Err(SyntaxError::WildcardInCommand('X'))
        );
        assert_eq!(
            parse_command("00 ?0"),
            Err(SyntaxError::WildcardInCommand('?'))
        );
        assert_eq!(
            parse_command("00 *"),
            Err(SyntaxError::WildcardInCommand('*'))
        );
        assert_eq!(
            parse_command("00 G0"),
            Err(SyntaxError::UnexpectedChar('G'))
        );
        assert_eq!(parse_command("  "), Err(SyntaxError::EmptyCommand));
        assert_eq!(parse_command("(A5*0)"), Err(SyntaxError::EmptyCommand));
    }

    // ---- macros ----

    #[test]
    fn repeat_macro() {
        let bytes = parse_command("80 10 00 00 (A5*300)").unwrap();
        assert_eq!(bytes.len(), 304);
        assert!(bytes[4..].iter().all(|&b| b == 0xA5));
        assert_eq!(parse_command("( ff * 2 )").unwrap(), [0xFF, 0xFF]);
    }

    #[test]
    fn sequence_macro_wraps_modulo_256() {
        assert_eq!(parse_command("(SEQ 0 3)").unwrap(), [0, 1, 2]);
        assert_eq!(
            parse_command("(seq 254 4)").unwrap(),
            [0xFE, 0xFF, 0x00, 0x01]
        );
        let long = parse_command("(SEQ 0 512)").unwrap();
        assert_eq!(long.len(), 512);
        assert_eq!(long[256], 0);
        assert_eq!(long[511], 255);
    }

    #[test]
    fn macros_sit_between_bytes() {
        assert_eq!(
            parse_command("01(02*2)03(SEQ 4 2)").unwrap(),
            [1, 2, 2, 3, 4, 5]
        );
        assert_eq!(
            parse_command("0(02*2)"),
            Err(SyntaxError::NotAtByteBoundary('('))
        );
    }

    #[test]
    fn macro_errors() {
        for (text, fragment) in [
            ("(A*3)", "two hex digits"),
            ("(A5A*3)", "two hex digits"),
            ("(A5*three)", "not a decimal"),
            ("(A5*70000)", "larger than"),
            ("(SEQ 256 2)", "0 to 255"),
            ("(SEQ 1)", "expected `(SEQ S N)`"),
            ("(SEQ 1 2 3)", "expected `(SEQ S N)`"),
            ("(A5 3)", "expected `(HH*N)`"),
            ("()", "expected `(HH*N)`"),
        ] {
            match parse_command(text) {
                Err(SyntaxError::BadMacro { reason, .. }) => {
                    assert!(reason.contains(fragment), "{text}: {reason}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        assert_eq!(parse_command("(A5*3"), Err(SyntaxError::UnclosedMacro));
        assert_eq!(parse_command("(A5*(3)"), Err(SyntaxError::UnclosedMacro));
    }

    // ---- patterns ----

    #[test]
    fn exact_pattern_must_match_whole_response() {
        let p = pattern("90 00");
        assert!(p.matches(&[0x90, 0x00]));
        assert!(!p.matches(&[0x01, 0x90, 0x00]));
        assert!(!p.matches(&[0x90]));
        assert_eq!(
            p.mismatch(&[0x6A, 0x82]),
            Some(Mismatch::Byte {
                offset: 0,
                actual: 0x6A,
                expected: PatternByte::exact(0x90)
            })
        );
        assert_eq!(
            p.mismatch(&[0x01, 0x90, 0x00]).unwrap().to_string(),
            "response is 3 byte(s); the pattern needs exactly 2"
        );
    }

    #[test]
    fn nibble_wildcards() {
        let p = pattern("6X XX");
        assert!(p.matches(&[0x6A, 0x82]));
        assert!(p.matches(&[0x61, 0x00]));
        assert!(!p.matches(&[0x90, 0x00]));
        assert!(pattern("?0 x0").matches(&[0xA0, 0x50]));
        assert!(!pattern("?0 x0").matches(&[0xA1, 0x50]));
        let m = pattern("90 0X").mismatch(&[0x90, 0x10]).unwrap();
        assert_eq!(m.to_string(), "byte 1 is 10; the pattern wants 0X");
    }

    #[test]
    fn whitespace_is_ignored_in_patterns() {
        assert!(pattern("9 0 0 0").matches(&[0x90, 0x00]));
        assert!(pattern("9000").matches(&[0x90, 0x00]));
    }

    #[test]
    fn star_at_start_middle_and_end() {
        let start = pattern("* 90 00");
        assert!(start.matches(&[0x90, 0x00]));
        assert!(start.matches(&[1, 2, 3, 0x90, 0x00]));
        assert!(!start.matches(&[1, 2, 3, 0x6A, 0x82]));

        let middle = pattern("6F XX * 90 00");
        assert!(middle.matches(&[0x6F, 0x00, 0x90, 0x00]));
        assert!(middle.matches(&[0x6F, 0x10, 1, 2, 3, 0x90, 0x00]));
        assert!(!middle.matches(&[0x6F, 0x90, 0x00]));
        assert_eq!(
            middle.mismatch(&[0x6F]).unwrap().to_string(),
            "response is 1 byte(s); the pattern needs at least 4"
        );
        assert_eq!(
            middle.mismatch(&[0x6F, 0x10, 1, 0x6A, 0x82]),
            Some(Mismatch::Byte {
                offset: 3,
                actual: 0x6A,
                expected: PatternByte::exact(0x90)
            })
        );

        let end = pattern("3B *");
        assert!(end.matches(&[0x3B]));
        assert!(end.matches(&[0x3B, 0x8A, 0x80]));
        assert!(!end.matches(&[0x3F, 0x8A]));

        let anything = pattern("*");
        assert!(anything.matches(&[]));
        assert!(anything.matches(&[0x90, 0x00]));
    }

    #[test]
    fn macros_in_patterns() {
        let p = pattern("(A5*300) 90 00");
        let mut response = vec![0xA5; 300];
        response.extend([0x90, 0x00]);
        assert!(p.matches(&response));
        response[299] = 0;
        assert!(!p.matches(&response));
        let seq = pattern("* (SEQ 250 8) 90 00");
        assert!(seq.matches(&[9, 250, 251, 252, 253, 254, 255, 0, 1, 0x90, 0x00]));
        assert_eq!(seq.source(), "* (SEQ 250 8) 90 00");
    }

    #[test]
    fn pattern_errors() {
        assert_eq!(Pattern::parse(" "), Err(SyntaxError::EmptyPattern));
        assert_eq!(Pattern::parse("90 0"), Err(SyntaxError::OddDigits));
        assert_eq!(Pattern::parse("* 90 * 00"), Err(SyntaxError::SecondStar));
        assert_eq!(
            Pattern::parse("9* 0 00"),
            Err(SyntaxError::NotAtByteBoundary('*'))
        );
        assert_eq!(
            Pattern::parse("90 0Z"),
            Err(SyntaxError::UnexpectedChar('Z'))
        );
    }

    #[test]
    fn exact_status_word_only_when_anchored_and_exact() {
        let sw = |text| pattern(text).exact_status_word();
        assert_eq!(sw("6F XX * 90 00"), Some(StatusWord::SUCCESS));
        assert_eq!(sw("6A 82"), Some(StatusWord::NOT_FOUND));
        assert_eq!(sw("* 6D 00"), Some(StatusWord::INS_NOT_SUPPORTED));
        assert_eq!(sw("6X XX"), None);
        assert_eq!(sw("90 00 *"), None);
        assert_eq!(sw("*"), None);
        assert_eq!(sw("90"), None);
    }

    #[test]
    fn pattern_byte_display() {
        let p = PatternByte {
            value: 0x60,
            mask: 0xF0,
        };
        assert_eq!(p.to_string(), "6X");
        assert_eq!(PatternByte::exact(0x0A).to_string(), "0A");
    }

    // ---- scripts ----

    const SAMPLE: &str = "\
# Select the card manager
#   second comment is not the title

> 00 A4 04 00 08 A000000151000000 00   # SELECT by AID
< 6F 10 * 90 00
>80 FF 00 00
  # a comment between `>` and `<` is allowed
<6D 00
RESET
< 3B *
power off
Power  On
reset
";

    #[test]
    fn parses_every_step_with_lines() {
        let script = parse(SAMPLE).unwrap();
        assert_eq!(script.name, "test.apdu");
        assert_eq!(script.path, Path::new("dir/test.apdu"));
        assert_eq!(script.title.as_deref(), Some("Select the card manager"));
        assert_eq!(script.steps.len(), 6);
        assert_eq!(script.command_count(), 2);

        let (command, expected) = exchange(&script.steps[0]);
        assert_eq!(script.steps[0].line, 4);
        assert_eq!(command.len(), 14);
        assert_eq!(expected.line, 5);
        assert_eq!(expected.pattern.source(), "6F 10 * 90 00");

        let (command, expected) = exchange(&script.steps[1]);
        assert_eq!(script.steps[1].line, 6);
        assert_eq!(command, [0x80, 0xFF, 0x00, 0x00]);
        assert_eq!(expected.line, 8);

        match &script.steps[2].kind {
            StepKind::Reset {
                expected_atr: Some(e),
            } => assert_eq!((script.steps[2].line, e.line), (9, 10)),
            other => panic!("{other:?}"),
        }
        assert_eq!(script.steps[3].kind, StepKind::PowerOff);
        assert_eq!(script.steps[3].line, 11);
        assert_eq!(
            script.steps[4].kind,
            StepKind::PowerOn { expected_atr: None }
        );
        assert_eq!(script.steps[5].kind, StepKind::Reset { expected_atr: None });
        assert_eq!(script.steps[5].kind.to_string(), "reset");
        assert_eq!(
            script.steps[1].kind.to_string(),
            "> 80 FF 00 00",
            "steps display as written"
        );
    }

    #[test]
    fn title_is_optional_and_skips_empty_comments() {
        assert_eq!(parse("reset\n").unwrap().title, None);
        assert_eq!(
            parse("#\n#   \n# Real title  \nreset\n")
                .unwrap()
                .title
                .as_deref(),
            Some("Real title")
        );
        // A trailing comment is not a title.
        assert_eq!(parse("reset # warm\n").unwrap().title, None);
    }

    #[test]
    fn byte_order_mark_and_crlf_are_accepted() {
        let script = parse("\u{FEFF}# t\r\n> 00 A4 04 00\r\n< 90 00\r\n").unwrap();
        assert_eq!(script.steps.len(), 1);
        assert_eq!(script.title.as_deref(), Some("t"));
    }

    #[test]
    fn command_without_response_is_an_error() {
        let (line, error) = syntax_error("> 00 A4 04 00\nreset\n");
        assert_eq!(line, 1);
        assert_eq!(
            error,
            SyntaxError::MissingResponse {
                found: "`reset` at line 2".to_owned()
            }
        );
        let (line, error) = syntax_error("reset\n\n> 00 A4 04 00\n# end\n");
        assert_eq!(line, 3);
        assert_eq!(
            error,
            SyntaxError::MissingResponse {
                found: "end of file".to_owned()
            }
        );
        let (line, _) = syntax_error("> 00 A4 04 00\n> 00 A4 04 00\n< 90 00\n");
        assert_eq!(line, 1);
    }

    #[test]
    fn stray_responses_are_errors() {
        assert_eq!(
            syntax_error("< 90 00\n"),
            (1, SyntaxError::UnexpectedResponse)
        );
        assert_eq!(
            syntax_error("> 00 A4 04 00\n< 90 00\n< 90 00\n"),
            (3, SyntaxError::UnexpectedResponse)
        );
        assert_eq!(
            syntax_error("power off\n< 3B *\n"),
            (2, SyntaxError::UnexpectedResponse)
        );
        assert_eq!(
            syntax_error("power on\n< 3B *\n< 3B *\n"),
            (3, SyntaxError::UnexpectedResponse)
        );
    }

    #[test]
    fn unknown_lines_and_bad_bytes_name_their_line() {
        assert_eq!(
            syntax_error("reset\npower cycle\n"),
            (2, SyntaxError::UnknownLine("power cycle".to_owned()))
        );
        assert_eq!(
            syntax_error("reset\n\n> 00 A4 0\n< 90 00\n"),
            (3, SyntaxError::OddDigits)
        );
        assert_eq!(
            syntax_error("> 00 A4 04 00\n< 90 0G\n"),
            (2, SyntaxError::UnexpectedChar('G'))
        );
    }

    #[test]
    fn empty_script_is_an_error() {
        assert_eq!(syntax_error(""), (1, SyntaxError::NoSteps));
        assert_eq!(
            syntax_error("# only\n# comments\n"),
            (2, SyntaxError::NoSteps)
        );
    }

    #[test]
    fn errors_display_file_and_line() {
        let error = parse("reset\nfrobnicate\n").unwrap_err();
        assert_eq!(error.line(), Some(2));
        let text = error.to_string();
        assert!(
            text.starts_with("dir/test.apdu:2: unrecognised line `frobnicate`"),
            "{text}"
        );
    }

    #[test]
    fn files_are_read_and_checked_for_utf8() {
        let dir = std::env::temp_dir().join(format!("linkcard-script-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.apdu");
        std::fs::write(&good, "# Good\n> 80 FF 00 00\n< 6D 00\n").unwrap();
        let script = parse_file(&good).unwrap();
        assert_eq!(script.name, "good.apdu");
        assert_eq!(script.title.as_deref(), Some("Good"));

        let bad = dir.join("bad.apdu");
        std::fs::write(&bad, b"reset\n\n# caf\xE9\n").unwrap();
        match parse_file(&bad) {
            Err(ScriptError::NotUtf8 { line, .. }) => assert_eq!(line, 3),
            other => panic!("{other:?}"),
        }
        match parse_file(&dir.join("missing.apdu")) {
            Err(e @ ScriptError::Io { .. }) => assert!(e.to_string().contains("missing.apdu")),
            other => panic!("{other:?}"),
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
