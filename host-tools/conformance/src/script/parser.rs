//! Reads a script line by line into its steps: `include` reads another file in place, `define` … `end` keeps
//! steps under a name and `call` puts them (with their parameters replaced) where it stands, so the runner only
//! ever sees a flat list. A last pass checks what only the whole list shows: every variable has a capture
//! before its first use, and every `close` has a session to close.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use apdu_spec::scp11::session::SecurityLevel;

use super::{
    CommandTemplate, Definition, Definitions, Expectation, LEVELS, Pattern, ScriptError,
    SessionVariant, Source, Step, StepKind, SyntaxError, is_name, read_text,
};
use crate::fixtures::{Keyring, Oce};

/// What a whole script came to.
pub(super) struct Parsed {
    pub title: Option<String>,
    pub steps: Vec<Step>,
}

/// The state of one script being read, across the files it includes.
pub(super) struct Parser {
    script: PathBuf,
    title: Option<String>,
    steps: Vec<Step>,
    definitions: Definitions,
    /// The files being read, the script first: including one of them again would never end.
    reading: Vec<PathBuf>,
    /// The `keys` directory in effect.
    keys: Option<Arc<Keyring>>,
    /// OCEs already read, by keys directory and name.
    oces: HashMap<(PathBuf, String), Arc<Oce>>,
}

/// One file being read.
struct File<'a> {
    path: &'a Path,
    /// Line of the script's `include` that (directly or not) brought this file in; `None` for the script.
    included_at: Option<usize>,
    pending: Pending,
    /// The definition whose body is being read.
    definition: Option<Frame>,
}

/// What the previous line left open.
enum Pending {
    Nothing,
    /// A `>` waiting for its `<`.
    Response {
        line: usize,
        command: CommandTemplate,
    },
    /// The last step may take an optional `<` (`reset`, `power on`, `open`, `personalize`).
    Check,
}

/// A definition whose `end` has not come yet.
struct Frame {
    name: String,
    line: usize,
    parameters: Vec<String>,
    steps: Vec<Step>,
}

fn syntax(path: &Path, line: usize, error: SyntaxError) -> ScriptError {
    ScriptError::Syntax {
        path: path.to_owned(),
        line,
        error,
    }
}

/// The directory relative paths in `path` start from.
fn dir_of(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new(""))
}

/// The same file whatever the path says (`a/../a/x.apdu`), when it exists.
fn identity(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

impl Parser {
    pub(super) fn new(script: &Path) -> Self {
        Self {
            script: script.to_owned(),
            title: None,
            steps: Vec::new(),
            definitions: Definitions::new(),
            reading: Vec::new(),
            keys: None,
            oces: HashMap::new(),
        }
    }

    pub(super) fn parse(mut self, text: &str) -> Result<Parsed, ScriptError> {
        let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
        let script = self.script.clone();
        self.read(&script, None, text)?;
        if self.steps.is_empty() {
            return Err(syntax(
                &script,
                text.lines().count().max(1),
                SyntaxError::NoSteps,
            ));
        }
        validate(&script, &self.steps)?;
        Ok(Parsed {
            title: self.title,
            steps: self.steps,
        })
    }

    fn read(
        &mut self,
        path: &Path,
        included_at: Option<usize>,
        text: &str,
    ) -> Result<(), ScriptError> {
        self.reading.push(identity(path));
        let mut file = File {
            path,
            included_at,
            pending: Pending::Nothing,
            definition: None,
        };
        for (index, raw) in text.lines().enumerate() {
            self.line(&mut file, index + 1, raw)?;
        }
        if let Pending::Response { line, .. } = file.pending {
            let found = "end of file".to_owned();
            return Err(syntax(path, line, SyntaxError::MissingResponse { found }));
        }
        if let Some(frame) = file.definition {
            return Err(syntax(
                path,
                frame.line,
                SyntaxError::UnclosedDefinition(frame.name),
            ));
        }
        self.reading.pop();
        Ok(())
    }

    fn line(&mut self, file: &mut File<'_>, number: usize, raw: &str) -> Result<(), ScriptError> {
        let (content, comment) = match raw.split_once('#') {
            Some((content, comment)) => (content.trim(), Some(comment.trim())),
            None => (raw.trim(), None),
        };
        if content.is_empty() {
            if self.title.is_none() && file.included_at.is_none() {
                self.title = comment.filter(|c| !c.is_empty()).map(str::to_owned);
            }
            return Ok(());
        }
        if let Some(pattern) = content.strip_prefix('<') {
            return self.response(file, number, pattern);
        }
        if let Pending::Response { line, .. } = file.pending {
            let found = format!("`{content}` at line {number}");
            return Err(syntax(
                file.path,
                line,
                SyntaxError::MissingResponse { found },
            ));
        }
        file.pending = Pending::Nothing;
        if let Some(command) = content.strip_prefix('>') {
            let mut command =
                CommandTemplate::parse(command).map_err(|e| syntax(file.path, number, e))?;
            if let Some(frame) = &file.definition {
                command.bind(&frame.parameters);
            }
            file.pending = Pending::Response {
                line: number,
                command,
            };
            return Ok(());
        }
        let path = file.path;
        self.keyword(file, number, content)
            .map_err(|e| e.at(path, number))
    }

    /// A `<` line: the response of the pending `>`, or the check of the step before.
    fn response(
        &mut self,
        file: &mut File<'_>,
        number: usize,
        text: &str,
    ) -> Result<(), ScriptError> {
        let error = |e| syntax(file.path, number, e);
        let mut pattern = Pattern::parse(text).map_err(error)?;
        if let Some(frame) = &file.definition {
            pattern.bind(&frame.parameters).map_err(error)?;
        }
        let expectation = Expectation {
            line: number,
            pattern,
        };
        match std::mem::replace(&mut file.pending, Pending::Nothing) {
            Pending::Response { line, command } => {
                let kind = StepKind::Exchange {
                    command,
                    expected: expectation,
                };
                self.push(file, line, kind);
                Ok(())
            }
            Pending::Check => {
                let last = self.sink(file).last_mut().map(|step| &mut step.kind);
                let slot = match last {
                    Some(StepKind::Reset { expected_atr } | StepKind::PowerOn { expected_atr }) => {
                        expected_atr
                    }
                    Some(
                        StepKind::Open { expected, .. } | StepKind::Personalize { expected, .. },
                    ) => expected,
                    _ => return Err(error(SyntaxError::UnexpectedResponse)),
                };
                *slot = Some(expectation);
                Ok(())
            }
            Pending::Nothing => Err(error(SyntaxError::UnexpectedResponse)),
        }
    }

    /// Where steps go: the definition being read, or the script.
    fn sink<'s>(&'s mut self, file: &'s mut File<'_>) -> &'s mut Vec<Step> {
        match file.definition.as_mut() {
            Some(frame) => &mut frame.steps,
            None => &mut self.steps,
        }
    }

    /// Adds a step written at `line` of `file`.
    fn push(&mut self, file: &mut File<'_>, line: usize, kind: StepKind) {
        let here = |definition| Source {
            path: file.path.to_owned(),
            line,
            definition,
        };
        let step = match (&file.definition, file.included_at) {
            (Some(frame), _) => Step {
                line,
                source: Some(here(Some(frame.name.clone()))),
                kind,
            },
            (None, Some(at)) => Step {
                line: at,
                source: Some(here(None)),
                kind,
            },
            (None, None) => Step {
                line,
                source: None,
                kind,
            },
        };
        self.sink(file).push(step);
    }

    fn keyword(
        &mut self,
        file: &mut File<'_>,
        number: usize,
        content: &str,
    ) -> Result<(), LineError> {
        let (word, rest) = content
            .split_once(char::is_whitespace)
            .map_or((content, ""), |(word, rest)| (word, rest.trim()));
        let simple = |kind: StepKind, takes_check: bool| (kind, takes_check);
        let (kind, takes_check) = match word.to_ascii_lowercase().as_str() {
            "reset" if rest.is_empty() => simple(StepKind::Reset { expected_atr: None }, true),
            "power" if rest.eq_ignore_ascii_case("off") => simple(StepKind::PowerOff, false),
            "power" if rest.eq_ignore_ascii_case("on") => {
                simple(StepKind::PowerOn { expected_atr: None }, true)
            }
            "close" if rest.is_empty() => simple(StepKind::Close, false),
            "open" => (self.open(rest)?, true),
            "personalize" => (self.personalize(file, rest)?, true),
            "keys" => return self.keys(file, rest),
            "include" => return self.include(file, number, rest),
            "define" => return self.define(file, number, rest),
            "end" if rest.is_empty() => return self.end(file),
            "call" => return self.call(file, number, rest),
            _ => return Err(SyntaxError::UnknownLine(content.to_owned()).into()),
        };
        self.push(file, number, kind);
        if takes_check {
            file.pending = Pending::Check;
        }
        Ok(())
    }

    /// `open scp11a OCE [LEVEL]`, `open scp11b [LEVEL]`.
    fn open(&mut self, rest: &str) -> Result<StepKind, LineError> {
        const USAGE: &str = "open scp11a OCE [LEVEL]` or `open scp11b [LEVEL]";
        let keys = self.keys.clone().ok_or(SyntaxError::NoKeys("open"))?;
        let words: Vec<&str> = rest.split_whitespace().collect();
        let (variant, level) = match words.as_slice() {
            [variant, oce, level @ ..]
                if variant.eq_ignore_ascii_case("scp11a") && level.len() < 2 =>
            {
                (SessionVariant::Scp11a(self.oce(&keys, oce)?), level)
            }
            [variant, level @ ..] if variant.eq_ignore_ascii_case("scp11b") && level.len() < 2 => {
                (SessionVariant::Scp11b, level)
            }
            _ => return Err(SyntaxError::Usage(USAGE).into()),
        };
        Ok(StepKind::Open {
            variant,
            level: parse_level(level.first().copied())?,
            keys,
            expected: None,
        })
    }

    fn oce(&mut self, keys: &Arc<Keyring>, name: &str) -> Result<Arc<Oce>, LineError> {
        if !is_name(name) {
            return Err(SyntaxError::BadName(name.to_owned()).into());
        }
        let key = (keys.dir.clone(), name.to_owned());
        if let Some(oce) = self.oces.get(&key) {
            return Ok(Arc::clone(oce));
        }
        let oce = Arc::new(
            keys.oce(name)
                .map_err(|e| LineError::Fixture(Box::new(e)))?,
        );
        self.oces.insert(key, Arc::clone(&oce));
        Ok(oce)
    }

    /// `personalize [INSTANCE]`.
    fn personalize(&mut self, file: &File<'_>, rest: &str) -> Result<StepKind, LineError> {
        let keys = self
            .keys
            .clone()
            .ok_or(SyntaxError::NoKeys("personalize"))?;
        let instance = if rest.is_empty() {
            None
        } else {
            let mut aid = CommandTemplate::parse(rest)?;
            if let Some(frame) = &file.definition {
                aid.bind(&frame.parameters);
            }
            Some(aid)
        };
        Ok(StepKind::Personalize {
            instance,
            keys,
            expected: None,
        })
    }

    /// `keys DIR`: the test keys of the steps that follow.
    fn keys(&mut self, file: &File<'_>, rest: &str) -> Result<(), LineError> {
        if file.definition.is_some() {
            return Err(SyntaxError::NotInDefinition("keys").into());
        }
        if rest.is_empty() {
            return Err(SyntaxError::Usage("keys DIR").into());
        }
        let keys = Keyring::load(&dir_of(file.path).join(rest))
            .map_err(|e| LineError::Fixture(Box::new(e)))?;
        self.keys = Some(Arc::new(keys));
        Ok(())
    }

    /// `include FILE`: the lines of `FILE` (relative to this file), as if they stood here.
    fn include(&mut self, file: &File<'_>, number: usize, rest: &str) -> Result<(), LineError> {
        if file.definition.is_some() {
            return Err(SyntaxError::NotInDefinition("include").into());
        }
        if rest.is_empty() {
            return Err(SyntaxError::Usage("include FILE").into());
        }
        let target = dir_of(file.path).join(rest);
        if self.reading.contains(&identity(&target)) {
            return Err(SyntaxError::IncludeCycle(rest.to_owned()).into());
        }
        let text = read_text(&target).map_err(|source| {
            LineError::Done(Box::new(ScriptError::Include {
                path: file.path.to_owned(),
                line: number,
                source: Box::new(source),
            }))
        })?;
        self.read(&target, Some(file.included_at.unwrap_or(number)), &text)
            .map_err(|e| LineError::Done(Box::new(e)))
    }

    /// `define NAME [PARAMETER...]`.
    fn define(&mut self, file: &mut File<'_>, number: usize, rest: &str) -> Result<(), LineError> {
        if let Some(frame) = &file.definition {
            return Err(SyntaxError::NestedDefinition(frame.name.clone()).into());
        }
        let mut words = rest.split_whitespace();
        let name = words
            .next()
            .ok_or(SyntaxError::Usage("define NAME [PARAMETER...]"))?;
        if !is_name(name) {
            return Err(SyntaxError::BadName(name.to_owned()).into());
        }
        if self.definitions.contains_key(name) {
            return Err(SyntaxError::Redefinition(name.to_owned()).into());
        }
        let mut parameters: Vec<String> = Vec::new();
        for parameter in words {
            if !is_name(parameter) {
                return Err(SyntaxError::BadName(parameter.to_owned()).into());
            }
            if parameters.iter().any(|p| p == parameter) {
                return Err(SyntaxError::DuplicateParameter(parameter.to_owned()).into());
            }
            parameters.push(parameter.to_owned());
        }
        file.definition = Some(Frame {
            name: name.to_owned(),
            line: number,
            parameters,
            steps: Vec::new(),
        });
        Ok(())
    }

    fn end(&mut self, file: &mut File<'_>) -> Result<(), LineError> {
        let frame = file
            .definition
            .take()
            .ok_or(SyntaxError::EndWithoutDefine)?;
        let definition = Definition {
            parameters: frame.parameters,
            steps: frame.steps,
        };
        self.definitions.insert(frame.name, definition);
        Ok(())
    }

    /// `call NAME [ARGUMENT...]`: the definition's steps, each parameter replaced by its argument.
    fn call(&mut self, file: &mut File<'_>, number: usize, rest: &str) -> Result<(), LineError> {
        let (name, arguments) = rest
            .split_once(char::is_whitespace)
            .map_or((rest, ""), |(name, arguments)| (name, arguments));
        if name.is_empty() {
            return Err(SyntaxError::Usage("call NAME [ARGUMENT...]").into());
        }
        let definition = self
            .definitions
            .get(name)
            .ok_or_else(|| SyntaxError::UnknownDefinition(name.to_owned()))?;
        let mut parsed = Vec::new();
        for argument in split_arguments(arguments) {
            let mut argument = CommandTemplate::parse_allowing_empty(argument)?;
            if let Some(frame) = &file.definition {
                argument.bind(&frame.parameters);
            }
            parsed.push(argument);
        }
        if parsed.len() != definition.parameters.len() {
            return Err(SyntaxError::ArgumentCount {
                name: name.to_owned(),
                expected: definition.parameters.len(),
                found: parsed.len(),
            }
            .into());
        }
        // Inside a definition the line is replaced again when that one is called.
        let line = match (&file.definition, file.included_at) {
            (None, Some(at)) => at,
            _ => number,
        };
        let steps: Vec<Step> = definition
            .steps
            .iter()
            .map(|step| Step {
                line,
                source: step.source.clone(),
                kind: substitute(&step.kind, &parsed),
            })
            .collect();
        let sink = self.sink(file);
        if sink.len() + steps.len() > super::MAX_STEPS {
            return Err(SyntaxError::TooManySteps.into());
        }
        sink.extend(steps);
        Ok(())
    }
}

/// What went wrong on one line: a syntax error (located by the caller), a fixture that cannot be used, or an
/// error already located (in an included file).
enum LineError {
    Syntax(SyntaxError),
    Fixture(Box<crate::fixtures::FixtureError>),
    Done(Box<ScriptError>),
}

impl From<SyntaxError> for LineError {
    fn from(error: SyntaxError) -> Self {
        Self::Syntax(error)
    }
}

impl LineError {
    fn at(self, path: &Path, line: usize) -> ScriptError {
        match self {
            Self::Syntax(error) => syntax(path, line, error),
            Self::Fixture(source) => ScriptError::Fixture {
                path: path.to_owned(),
                line,
                source,
            },
            Self::Done(error) => *error,
        }
    }
}

fn parse_level(word: Option<&str>) -> Result<SecurityLevel, SyntaxError> {
    let Some(word) = word else {
        return Ok(SecurityLevel::FULL);
    };
    LEVELS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(word))
        .map(|(_, level)| *level)
        .ok_or_else(|| SyntaxError::UnknownLevel(word.to_owned()))
}

/// The words of a `call`'s arguments: split at whitespace outside `( )` and `{ }`, so `(SEQ 0 4)` is one.
pub(super) fn split_arguments(text: &str) -> Vec<&str> {
    let mut arguments = Vec::new();
    let mut depth = 0usize;
    let mut start = None;
    for (i, c) in text.char_indices() {
        match c {
            '(' | '{' => depth += 1,
            ')' | '}' => depth = depth.saturating_sub(1),
            c if c.is_whitespace() && depth == 0 => {
                if let Some(s) = start.take() {
                    arguments.push(&text[s..i]);
                }
                continue;
            }
            _ => {}
        }
        start.get_or_insert(i);
    }
    if let Some(s) = start {
        arguments.push(&text[s..]);
    }
    arguments
}

fn substitute_expectation(
    expectation: &Option<Expectation>,
    arguments: &[CommandTemplate],
) -> Option<Expectation> {
    expectation.as_ref().map(|e| Expectation {
        line: e.line,
        pattern: e.pattern.substitute(arguments),
    })
}

/// A definition's step with its parameters replaced by `arguments`.
fn substitute(kind: &StepKind, arguments: &[CommandTemplate]) -> StepKind {
    match kind {
        StepKind::Exchange { command, expected } => StepKind::Exchange {
            command: command.substitute(arguments),
            expected: Expectation {
                line: expected.line,
                pattern: expected.pattern.substitute(arguments),
            },
        },
        StepKind::Reset { expected_atr } => StepKind::Reset {
            expected_atr: substitute_expectation(expected_atr, arguments),
        },
        StepKind::PowerOn { expected_atr } => StepKind::PowerOn {
            expected_atr: substitute_expectation(expected_atr, arguments),
        },
        StepKind::Open {
            variant,
            level,
            keys,
            expected,
        } => StepKind::Open {
            variant: variant.clone(),
            level: *level,
            keys: Arc::clone(keys),
            expected: substitute_expectation(expected, arguments),
        },
        StepKind::Personalize {
            instance,
            keys,
            expected,
        } => StepKind::Personalize {
            instance: instance.as_ref().map(|aid| aid.substitute(arguments)),
            keys: Arc::clone(keys),
            expected: substitute_expectation(expected, arguments),
        },
        StepKind::PowerOff | StepKind::Close => kind.clone(),
    }
}

/// The `<` lines of a step.
fn expectations(kind: &StepKind) -> impl Iterator<Item = &Expectation> {
    let expectation = match kind {
        StepKind::Exchange { expected, .. } => Some(expected),
        StepKind::Reset { expected_atr } | StepKind::PowerOn { expected_atr } => {
            expected_atr.as_ref()
        }
        StepKind::Open { expected, .. } | StepKind::Personalize { expected, .. } => {
            expected.as_ref()
        }
        StepKind::PowerOff | StepKind::Close => None,
    };
    expectation.into_iter()
}

/// The variables a step reads (captures excluded).
fn uses(kind: &StepKind) -> Vec<&str> {
    let command = match kind {
        StepKind::Exchange { command, .. } => Some(command),
        StepKind::Personalize { instance, .. } => instance.as_ref(),
        _ => None,
    };
    command
        .into_iter()
        .flat_map(CommandTemplate::variables)
        .chain(expectations(kind).flat_map(|e| e.pattern.variables()))
        .collect()
}

/// Checks the whole list: each variable is captured before it is used, each `close` closes a session.
fn validate(script: &Path, steps: &[Step]) -> Result<(), ScriptError> {
    let mut captured: HashSet<&str> = HashSet::new();
    let mut session = false;
    for step in steps {
        let error = |error| match &step.source {
            Some(source) => syntax(&source.path, source.line, error),
            None => syntax(script, step.line, error),
        };
        if let Some(name) = uses(&step.kind).into_iter().find(|n| !captured.contains(n)) {
            let context = match &step.source {
                Some(_) => format!(" (brought in by line {} of the script)", step.line),
                None => String::new(),
            };
            let name = name.to_owned();
            return Err(error(SyntaxError::UndefinedVariable { name, context }));
        }
        match &step.kind {
            StepKind::Close if !session => return Err(error(SyntaxError::CloseWithoutSession)),
            StepKind::Open { expected, .. } => {
                // An `open` that must be refused leaves no session.
                session = expected
                    .as_ref()
                    .is_none_or(|e| e.pattern.matches(&[0x90, 0x00]));
            }
            StepKind::Exchange { .. } | StepKind::Personalize { .. } => {}
            _ => session = false,
        }
        captured.extend(expectations(&step.kind).flat_map(|e| e.pattern.captures()));
    }
    Ok(())
}
