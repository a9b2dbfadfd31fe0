//! Runs conformance scripts against a card and reports the outcome.
//!
//! Scripts are independent: [`run_each`] gives each one a fresh card from the caller's factory (the `linkcard`
//! command's is the in-process card of the `emulator` crate), and [`run_on_channel`] (for a card that stays in a
//! reader) warm-resets the card before each one. A script stops at its first
//! mismatch; the [`Report`] says where, what was sent, what was expected and what came back.

use std::path::{Path, PathBuf};

use apdu_spec::StatusWord;
use serde::Serialize;

use card_client::{CardChannel, Traced};

use crate::script::Script;

mod play;

/// File extension of conformance scripts.
pub const SCRIPT_EXTENSION: &str = "apdu";

/// The outcome of every script of one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The channel the scripts ran on.
    pub transport: String,
    /// Scripts that passed.
    pub passed: usize,
    /// Scripts that failed.
    pub failed: usize,
    /// One outcome per script, in the order they ran.
    pub scripts: Vec<ScriptOutcome>,
}

/// How one script went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScriptOutcome {
    /// The script's file name.
    pub name: String,
    /// Where it was read from.
    pub path: String,
    /// Its title (first comment line).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Whether every step got what it expected.
    pub passed: bool,
    /// Command APDUs sent, including the one that failed.
    pub exchanges: usize,
    /// The step that failed, if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
}

/// The step a script stopped at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// Line of the step in the script (or of the `call` or `include` that brought it in); `None` for the reset
    /// a shared channel does before a script.
    pub line: Option<usize>,
    /// Where the step is written when not on `line` of the script: `lib/loopback.apdu:4 in install`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The step, macros expanded: `> 00 A4 04 00 ...`, `reset`, `power on`.
    pub step: String,
    /// The `<` line the step was checked against, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<ExpectedResponse>,
    /// What came back (response or ATR), hex; `None` when the channel failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual: Option<String>,
    /// The status word of the response (command responses only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual_status: Option<NamedStatus>,
    /// Why the step failed: the first difference, or the channel error.
    pub reason: String,
}

/// A `<` pattern as reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpectedResponse {
    /// Line of the `<`.
    pub line: usize,
    /// The pattern as written.
    pub pattern: String,
    /// The status word the pattern requires, when it requires an exact one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<NamedStatus>,
}

/// A status word with its name: `6A82`, `NOT_FOUND`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NamedStatus {
    /// SW1 SW2 as four hex digits.
    pub sw: String,
    /// Its name from [`StatusWord::name`].
    pub name: &'static str,
}

impl From<StatusWord> for NamedStatus {
    fn from(status: StatusWord) -> Self {
        Self {
            sw: format!("{:04X}", status.0),
            name: status.name(),
        }
    }
}

impl std::fmt::Display for NamedStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.sw, self.name)
    }
}

impl Report {
    /// A report of `scripts` run on `transport`.
    pub fn new(transport: String, scripts: Vec<ScriptOutcome>) -> Self {
        let passed = scripts.iter().filter(|s| s.passed).count();
        Self {
            transport,
            passed,
            failed: scripts.len() - passed,
            scripts,
        }
    }

    /// Whether every script passed.
    pub fn all_passed(&self) -> bool {
        self.failed == 0
    }

    /// One line per script, details under each failure, and a last line `N passed, M failed` (the report's
    /// [`Display`](std::fmt::Display)).
    pub fn human(&self) -> String {
        self.to_string()
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> serde_json::Result<String> {
        serde_json::to_string_pretty(self)
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for script in &self.scripts {
            write_outcome(f, script)?;
        }
        writeln!(f, "{} passed, {} failed", self.passed, self.failed)
    }
}

fn write_outcome(text: &mut impl std::fmt::Write, script: &ScriptOutcome) -> std::fmt::Result {
    let verdict = if script.passed { "PASS" } else { "FAIL" };
    let plural = if script.exchanges == 1 { "" } else { "s" };
    write!(
        text,
        "{verdict} {} ({} exchange{plural})",
        script.name, script.exchanges
    )?;
    if let Some(title) = &script.title {
        write!(text, " - {title}")?;
    }
    writeln!(text)?;
    let Some(failure) = &script.failure else {
        return Ok(());
    };
    match (failure.line, &failure.source) {
        (Some(line), Some(source)) => {
            writeln!(text, "    line {line} ({source}): {}", failure.step)?
        }
        (Some(line), None) => writeln!(text, "    line {line}: {}", failure.step)?,
        (None, _) => writeln!(text, "    before the script: {}", failure.step)?,
    }
    if let Some(expected) = &failure.expected {
        write!(
            text,
            "    expected (line {}): {}",
            expected.line, expected.pattern
        )?;
        if let Some(status) = &expected.status {
            write!(text, "  [{status}]")?;
        }
        writeln!(text)?;
    }
    if let Some(actual) = &failure.actual {
        let shown = if actual.is_empty() {
            "(nothing)"
        } else {
            actual
        };
        write!(text, "    actual: {shown}")?;
        if let Some(status) = &failure.actual_status {
            write!(text, "  [{status}]")?;
        }
        writeln!(text)?;
    }
    writeln!(text, "    {}", failure.reason)
}

/// Runs `script` on `channel` as the card stands, stopping at the first step that fails.
pub fn run_script(script: &Script, channel: &mut dyn CardChannel) -> ScriptOutcome {
    let (exchanges, failure) = play::run_steps(&script.steps, channel);
    ScriptOutcome {
        name: script.name.clone(),
        path: script.path.display().to_string(),
        title: script.title.clone(),
        passed: failure.is_none(),
        exchanges,
        failure,
    }
}

/// Runs each script on a fresh card from `new_card` (a factory card, powered on), reporting `transport` as
/// what the scripts ran on; `trace` logs every exchange to stderr. Stops at the first card the factory cannot
/// make and returns its error: without a card nothing trustworthy can be reported.
pub fn run_each<C, E>(
    scripts: &[Script],
    transport: &str,
    trace: bool,
    mut new_card: impl FnMut() -> Result<C, E>,
) -> Result<Report, E>
where
    C: CardChannel,
{
    let mut outcomes = Vec::with_capacity(scripts.len());
    for script in scripts {
        let mut card = new_card()?;
        outcomes.push(if trace {
            eprintln!("== {}", script.name);
            run_script(script, &mut Traced::new(&mut card))
        } else {
            run_script(script, &mut card)
        });
    }
    Ok(Report::new(transport.to_owned(), outcomes))
}

/// Runs each script on one shared card (a card in a reader), with a warm reset before each script.
pub fn run_on_channel(scripts: &[Script], channel: &mut dyn CardChannel) -> Report {
    let outcomes = scripts
        .iter()
        .map(|script| match channel.reset() {
            Ok(_) => run_script(script, channel),
            Err(e) => ScriptOutcome {
                name: script.name.clone(),
                path: script.path.display().to_string(),
                title: script.title.clone(),
                passed: false,
                exchanges: 0,
                failure: Some(play::channel_failure(None, "reset".to_owned(), &e)),
            },
        })
        .collect();
    Report::new(channel.describe(), outcomes)
}

/// Why script files could not be found.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// A path does not exist or cannot be read (the reason is the source).
    #[error("{}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A directory holds no `*.apdu` file.
    #[error("{}: no *.{SCRIPT_EXTENSION} scripts in this directory", dir.display())]
    NoScripts {
        /// The directory.
        dir: PathBuf,
    },
}

/// Where scripts are looked for when none are named: `tests/conformance` under the current directory if it
/// exists, else the workspace's own `tests/conformance` (found at compile time).
pub fn default_script_dir() -> PathBuf {
    let relative = Path::new("tests").join("conformance");
    if relative.is_dir() {
        relative
    } else {
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/conformance"
        ))
    }
}

/// The script files `paths` name: files as given, directories expanded to their `*.apdu` files sorted by
/// name. A directory without scripts is an error, so a run can never pass by running nothing.
pub fn collect_script_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, DiscoveryError> {
    let mut scripts = Vec::new();
    for path in paths {
        let io_error = |source| DiscoveryError::Io {
            path: path.clone(),
            source,
        };
        let metadata = std::fs::metadata(path).map_err(io_error)?;
        if !metadata.is_dir() {
            scripts.push(path.clone());
            continue;
        }
        let mut found = Vec::new();
        for entry in std::fs::read_dir(path).map_err(io_error)? {
            let entry_path = entry.map_err(io_error)?.path();
            let is_script = entry_path
                .extension()
                .is_some_and(|e| e == SCRIPT_EXTENSION);
            if is_script && entry_path.is_file() {
                found.push(entry_path);
            }
        }
        if found.is_empty() {
            return Err(DiscoveryError::NoScripts { dir: path.clone() });
        }
        found.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
        scripts.extend(found);
    }
    Ok(scripts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::parse_str;
    use card_client::ChannelError;

    fn script(text: &str) -> Script {
        parse_str(Path::new("t/test.apdu"), text).unwrap()
    }

    // The runner on the real in-process card (fresh cards, shared card, report layout): `emulator/tests/runner.rs`,
    // since this crate does not link the card.

    /// A channel whose card has gone: every operation fails.
    #[derive(Debug)]
    struct Unplugged;

    impl CardChannel for Unplugged {
        fn transmit(&mut self, _: &[u8]) -> Result<Vec<u8>, ChannelError> {
            Err(ChannelError::NoCard("test reader".into()))
        }
        fn reset(&mut self) -> Result<Vec<u8>, ChannelError> {
            Err(ChannelError::NoCard("test reader".into()))
        }
        fn power_off(&mut self) -> Result<(), ChannelError> {
            Err(ChannelError::NoCard("test reader".into()))
        }
        fn power_on(&mut self) -> Result<Vec<u8>, ChannelError> {
            Err(ChannelError::NoCard("test reader".into()))
        }
        fn describe(&self) -> String {
            "unplugged test reader".into()
        }
    }

    #[test]
    fn channel_errors_fail_the_script() {
        let s = script("> 80 FF 00 00\n< 6D 00\n");
        let failure = run_script(&s, &mut Unplugged).failure.unwrap();
        assert_eq!(failure.line, Some(1));
        assert_eq!(failure.actual, None);
        assert_eq!(
            failure.reason,
            "channel error: no card present in test reader"
        );

        let report = run_on_channel(&[s], &mut Unplugged);
        assert_eq!(report.transport, "unplugged test reader");
        let failure = report.scripts[0].failure.as_ref().unwrap();
        assert_eq!((failure.line, failure.step.as_str()), (None, "reset"));
        assert!(report.human().contains("    before the script: reset\n"));
    }

    #[test]
    fn directories_expand_to_sorted_scripts() {
        let dir = std::env::temp_dir().join(format!("linkcard-discover-{}", std::process::id()));
        let empty = dir.join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        for name in ["b.apdu", "a.apdu", "notes.txt", "c.apdu"] {
            std::fs::write(dir.join(name), "reset\n").unwrap();
        }
        std::fs::write(empty.join("README.md"), "").unwrap();

        let found = collect_script_paths(std::slice::from_ref(&dir)).unwrap();
        let names: Vec<_> = found.iter().map(|p| p.file_name().unwrap()).collect();
        assert_eq!(names, ["a.apdu", "b.apdu", "c.apdu"]);

        // Files are taken as named, whatever their extension.
        let notes = dir.join("notes.txt");
        assert_eq!(
            collect_script_paths(std::slice::from_ref(&notes)).unwrap(),
            [notes]
        );
        assert!(matches!(
            collect_script_paths(&[empty]),
            Err(DiscoveryError::NoScripts { .. })
        ));
        assert!(matches!(
            collect_script_paths(&[dir.join("missing")]),
            Err(DiscoveryError::Io { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
