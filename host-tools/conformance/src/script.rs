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
//! > 00 70 00 00 01                         # {NAME:N} captures N bytes, {NAME} uses them
//! < {CHANNEL:1} 90 00
//! > 00 70 80 {CHANNEL}
//! < 90 00
//! include lib/loopback.apdu                # the lines of another file (definitions, say)
//! define delete AID                        # named steps with parameters ...
//! > 80 E4 00 00 09 4F 07 {AID} 00
//! < 00 90 00
//! end
//! call delete F04C4E4B43FF02               # ... and their use
//! keys ../fixtures/scp11                   # test keys for the secure channel
//! personalize                              # the selected card manager gets a key, certificate and anchor
//! open scp11a issuer full                  # plain `>` lines go through an SCP11 session until
//! close                                    # `close`, `reset` or a power step
//! ```

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use apdu_spec::scp11::session::SecurityLevel;

use crate::fixtures::{FixtureError, Keyring, Oce};

mod bytes;
mod parser;
#[cfg(test)]
mod parser_tests;

pub use bytes::{
    CommandTemplate, MAX_MACRO_BYTES, Mismatch, Pattern, PatternByte, Piece, Undefined, Variables,
    is_name, parse_command,
};

/// The security levels a script may ask for, by the names `linkcard scp11 send --level` uses.
pub const LEVELS: [(&str, SecurityLevel); 4] = [
    ("mac", SecurityLevel::MAC),
    ("mac-enc", SecurityLevel::MAC_ENC),
    ("mac-rmac", SecurityLevel::MAC_RMAC),
    ("full", SecurityLevel::FULL),
];

/// The name of `level` in [`LEVELS`].
pub fn level_name(level: SecurityLevel) -> &'static str {
    LEVELS
        .iter()
        .find(|(_, l)| *l == level)
        .map_or("custom", |(name, _)| name)
}

/// A parsed script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// The file name, e.g. `01-select.apdu`.
    pub name: String,
    /// Where the script was read from.
    pub path: PathBuf,
    /// The text of the first comment line that has any, e.g. `SELECT by AID`.
    pub title: Option<String>,
    /// What the script does, in order: included files and definitions expanded.
    pub steps: Vec<Step>,
}

impl Script {
    /// How many command APDUs (`>` lines) the script sends when it passes.
    pub fn command_count(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| matches!(s.kind, StepKind::Exchange { .. }))
            .count()
    }
}

/// One step and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Line of the script file (1-based): of the step's own line (`>`, `reset`, `open`...), or of the `call` or
    /// `include` that brought it in.
    pub line: usize,
    /// Where the step is written when that is not `line` of the script itself: in an included file, or in a
    /// definition.
    pub source: Option<Source>,
    /// What to do.
    pub kind: StepKind,
}

/// A line in some file, and the definition it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The file.
    pub path: PathBuf,
    /// The line (1-based).
    pub line: usize,
    /// The definition the line is part of.
    pub definition: Option<String>,
}

impl fmt::Display for Source {
    /// `lib/loopback.apdu:4 in install`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.path.display(), self.line)?;
        if let Some(definition) = &self.definition {
            write!(f, " in {definition}")?;
        }
        Ok(())
    }
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepKind {
    /// Send `command` (through the session when one is open); the (plain) response must match `expected`.
    Exchange {
        /// The command APDU, macros expanded; variables are expanded when it is sent.
        command: CommandTemplate,
        /// The `<` line that follows it.
        expected: Expectation,
    },
    /// Warm reset (it ends a session); the ATR must match `expected_atr` when given.
    Reset {
        /// The optional `<` line after `reset`.
        expected_atr: Option<Expectation>,
    },
    /// Remove power (it ends a session).
    PowerOff,
    /// Power on (it ends a session); the ATR must match `expected_atr` when given.
    PowerOn {
        /// The optional `<` line after `power on`.
        expected_atr: Option<Expectation>,
    },
    /// Open an SCP11 session with the selected security domain, whose certificate (GET DATA BF21) must verify
    /// against the keys' card CA.
    Open {
        /// SCP11a with an OCE, or SCP11b.
        variant: SessionVariant,
        /// The protections the session applies.
        level: SecurityLevel,
        /// The keys directory in effect.
        keys: Arc<Keyring>,
        /// The optional `<` line: the status word the handshake must end with (90 00 when it opens).
        expected: Option<Expectation>,
    },
    /// End the session on the host side (the card ends its own at the next plain command, SELECT or reset).
    Close,
    /// Personalize a security domain through the selected card manager (`card_client::scp11::personalize`):
    /// a key generated on the card, certified by the keys' card CA, and the OCE CA as trust anchor.
    Personalize {
        /// The instance (INSTALL [for personalization]); `None` for the card manager itself.
        instance: Option<CommandTemplate>,
        /// The keys directory in effect.
        keys: Arc<Keyring>,
        /// The optional `<` line: the status word personalization must end with (90 00 when it succeeds).
        expected: Option<Expectation>,
    },
}

/// Which SCP11 handshake an `open` step runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionVariant {
    /// Mutual authentication with this OCE's key and certificates.
    Scp11a(Arc<Oce>),
    /// The card authenticates; the host stays anonymous.
    Scp11b,
}

impl fmt::Display for StepKind {
    /// The step as a script would write it, macros expanded: `> 00 A4 ...`, `reset`, `open scp11a issuer full`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exchange { command, .. } => write!(f, "> {command}"),
            Self::Reset { .. } => f.write_str("reset"),
            Self::PowerOff => f.write_str("power off"),
            Self::PowerOn { .. } => f.write_str("power on"),
            Self::Open { variant, level, .. } => match variant {
                SessionVariant::Scp11a(oce) => {
                    write!(f, "open scp11a {} {}", oce.name, level_name(*level))
                }
                SessionVariant::Scp11b => write!(f, "open scp11b {}", level_name(*level)),
            },
            Self::Close => f.write_str("close"),
            Self::Personalize { instance, .. } => match instance {
                Some(aid) => write!(f, "personalize {aid}"),
                None => f.write_str("personalize"),
            },
        }
    }
}

/// A `<` line: the pattern and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    /// Line of the `<` (1-based), in the file of the step it belongs to.
    pub line: usize,
    /// The pattern the response must match.
    pub pattern: Pattern,
}

/// Most steps a script may expand to (its own, its includes' and its calls' together).
pub const MAX_STEPS: usize = 100_000;

/// What is wrong with one line (or with the script as a whole).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    /// Neither a comment, a `>`/`<` line nor a keyword.
    #[error(
        "unrecognised line `{0}`: expected `> command`, `< response`, a keyword (reset, power off, power on, open, close, personalize, keys, include, define, end, call) or a `#` comment"
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
    /// A `*`, a macro or a variable between the two digits of a byte.
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
    /// A `{` without its `}`.
    #[error("`{{` without a closing `}}`")]
    UnclosedVariable,
    /// The text between braces is neither `{NAME}` nor `{NAME:N}`.
    #[error("bad variable `{{{text}}}`: {reason}")]
    BadVariable {
        /// What was inside the braces.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `{NAME:N}` in a command: only responses capture.
    #[error(
        "`{{{0}:N}}` captures a response field: only `<` patterns capture; use `{{{0}}}` in a command"
    )]
    CaptureInCommand(String),
    /// A variable where no script is there to give it a value (`parse_command`).
    #[error("variable `{{{0}}}` outside a script")]
    UnexpectedVariable(String),
    /// A variable that nothing before it sets.
    #[error(
        "variable `{{{name}}}` has no value here: no capture `{{{name}:N}}` comes before it{context}"
    )]
    UndefinedVariable {
        /// The variable.
        name: String,
        /// Where the step came from, when a call or an include brought it in: ` (called at line 12)`.
        context: String,
    },
    /// An empty `>` line.
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
    #[error("`<` line does not follow a command, `reset`, `power on`, `open` or `personalize`")]
    UnexpectedResponse,
    /// A keyword with the wrong words after it.
    #[error("expected `{0}`")]
    Usage(&'static str),
    /// A word that is not a name.
    #[error("`{0}` is not a name: a letter or `_`, then letters, digits, `_` or `-`")]
    BadName(String),
    /// A level name `open` does not know.
    #[error("unknown security level `{0}`: mac, mac-enc, mac-rmac or full")]
    UnknownLevel(String),
    /// `open` or `personalize` before any `keys` line.
    #[error(
        "`{0}` needs test keys: write `keys DIR` before it (tests/fixtures/scp11 in this workspace)"
    )]
    NoKeys(&'static str),
    /// `close` with no session open.
    #[error("`close` without an open session")]
    CloseWithoutSession,
    /// `define` inside a definition.
    #[error("`define` inside the definition of `{0}`: definitions do not nest")]
    NestedDefinition(String),
    /// A keyword that a definition's body may not hold.
    #[error("`{0}` is not allowed inside a definition")]
    NotInDefinition(&'static str),
    /// A second definition of a name.
    #[error("`{0}` is already defined")]
    Redefinition(String),
    /// Two parameters of one definition with the same name.
    #[error("parameter `{0}` appears twice")]
    DuplicateParameter(String),
    /// A capture whose name is a parameter of the definition it is in.
    #[error("`{{{0}:N}}` would capture into a parameter; capture into another name")]
    CaptureIntoParameter(String),
    /// `end` with no definition open.
    #[error("`end` without `define`")]
    EndWithoutDefine,
    /// A definition still open at the end of its file.
    #[error("definition of `{0}` has no `end`")]
    UnclosedDefinition(String),
    /// `call` of a name that is not defined (yet).
    #[error("`{0}` is not defined (a definition comes before its calls)")]
    UnknownDefinition(String),
    /// Calls expand to more steps than a script may have ([`MAX_STEPS`]): definitions calling each other many
    /// times over.
    #[error("the script expands to more than {max} steps", max = MAX_STEPS)]
    TooManySteps,
    /// `call` with the wrong number of arguments.
    #[error("`{name}` takes {expected} argument(s), not {found}")]
    ArgumentCount {
        /// The definition.
        name: String,
        /// Its parameters.
        expected: usize,
        /// The arguments given.
        found: usize,
    },
    /// An `include` of a file that is being included already.
    #[error("`include {0}` includes itself (through the files that include it)")]
    IncludeCycle(String),
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
    /// An included file cannot be read (the reason is the source).
    #[error("{}:{line}: cannot include", path.display())]
    Include {
        /// The file with the `include` line.
        path: PathBuf,
        /// The `include` line.
        line: usize,
        /// Why the included file cannot be read.
        source: Box<ScriptError>,
    },
    /// The test keys of a `keys`, `open` or `personalize` line cannot be used (the reason is the source).
    #[error("{}:{line}: cannot use the test keys", path.display())]
    Fixture {
        /// The file.
        path: PathBuf,
        /// The line.
        line: usize,
        /// What is wrong with them.
        source: Box<FixtureError>,
    },
}

impl ScriptError {
    /// The line the error is on, when it is about one line.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::Io { .. } => None,
            Self::NotUtf8 { line, .. }
            | Self::Syntax { line, .. }
            | Self::Include { line, .. }
            | Self::Fixture { line, .. } => Some(*line),
        }
    }
}

/// Reads a file as UTF-8 text.
fn read_text(path: &Path) -> Result<String, ScriptError> {
    let bytes = std::fs::read(path).map_err(|source| ScriptError::Io {
        path: path.to_owned(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = e
            .as_bytes()
            .get(..e.utf8_error().valid_up_to())
            .unwrap_or(&[]);
        ScriptError::NotUtf8 {
            path: path.to_owned(),
            line: 1 + valid.iter().filter(|&&b| b == b'\n').count(),
        }
    })
}

/// Reads and parses the script at `path`.
pub fn parse_file(path: &Path) -> Result<Script, ScriptError> {
    parse_str(path, &read_text(path)?)
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

/// Parses script `text` read from `path` (which names the script and its errors; `include` and `keys` lines
/// are relative to its directory).
pub fn parse_str(path: &Path, text: &str) -> Result<Script, ScriptError> {
    let steps = parser::Parser::new(path).parse(text)?;
    Ok(Script {
        name: path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
        path: path.to_owned(),
        title: steps.title,
        steps: steps.steps,
    })
}

/// The steps of a definition and the names of its parameters.
#[derive(Debug, Clone)]
struct Definition {
    parameters: Vec<String>,
    steps: Vec<Step>,
}

/// Definitions by name.
type Definitions = HashMap<String, Definition>;

#[cfg(test)]
mod tests {
    use super::*;
    use apdu_spec::StatusWord;

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

    fn exchange(step: &Step) -> (Vec<u8>, &Expectation) {
        match &step.kind {
            StepKind::Exchange { command, expected } => {
                (command.expand(&Variables::new()).unwrap(), expected)
            }
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
