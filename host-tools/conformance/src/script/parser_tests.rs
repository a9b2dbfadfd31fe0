//! The parser's newer lines: variables and captures, definitions and calls, includes, test keys and sessions.

use std::path::{Path, PathBuf};

use super::*;

/// The workspace's SCP11 test keys.
const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/scp11");

fn parse(text: &str) -> Result<Script, ScriptError> {
    parse_str(Path::new("dir/test.apdu"), text)
}

fn syntax_error(text: &str) -> (usize, SyntaxError) {
    match parse(text) {
        Err(ScriptError::Syntax { line, error, .. }) => (line, error),
        other => panic!("expected a syntax error, got {other:?}"),
    }
}

fn command(step: &Step, variables: &Variables) -> Vec<u8> {
    match &step.kind {
        StepKind::Exchange { command, .. } => command.expand(variables).unwrap(),
        other => panic!("not an exchange: {other:?}"),
    }
}

fn pattern(step: &Step) -> &Pattern {
    match &step.kind {
        StepKind::Exchange { expected, .. } => &expected.pattern,
        other => panic!("not an exchange: {other:?}"),
    }
}

/// A directory of script files, removed when dropped.
struct Files(PathBuf);

impl Files {
    fn new(test: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("linkcard-parser-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("lib")).unwrap();
        Self(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---- variables and captures ----

#[test]
fn a_capture_sets_a_variable_for_later_commands_and_patterns() {
    let script = parse(
        "> 00 70 00 00 01\n< {CHANNEL:1} 90 00\n> 00 70 80 {CHANNEL}\n< 90 00\n> 80 14 00 00 00\n< {CHANNEL} 03 * 90 00\n",
    )
    .unwrap();
    let opened = pattern(&script.steps[0]);
    let captures = opened
        .check(&[0x02, 0x90, 0x00], &Variables::new())
        .unwrap();
    assert_eq!(captures, [("CHANNEL".to_owned(), vec![0x02])]);

    let mut variables = Variables::new();
    variables.set("CHANNEL", vec![0x02]);
    assert_eq!(
        command(&script.steps[1], &variables),
        [0x00, 0x70, 0x80, 0x02]
    );
    assert_eq!(script.steps[1].kind.to_string(), "> 00 70 80 {CHANNEL}");
    let info = pattern(&script.steps[2]);
    assert!(info.check(&[0x02, 0x03, 0x90, 0x00], &variables).is_ok());
    assert_eq!(
        info.check(&[0x01, 0x03, 0x90, 0x00], &variables)
            .unwrap_err()
            .to_string(),
        "byte 0 is 01; the pattern wants 02"
    );
}

#[test]
fn captures_are_checked_for_length_before_and_after_a_star() {
    let p = Pattern::parse("{FIRST:2} * {LAST:1} 90 00").unwrap();
    let captures = p
        .check(&[1, 2, 3, 4, 5, 0x90, 0x00], &Variables::new())
        .unwrap();
    assert_eq!(
        captures,
        [
            ("FIRST".to_owned(), vec![1, 2]),
            ("LAST".to_owned(), vec![5])
        ]
    );
    // Too short for both captures: no value is taken.
    assert_eq!(
        p.check(&[1, 2, 0x90, 0x00], &Variables::new()),
        Err(Mismatch::Length {
            actual: 4,
            expected: 5,
            at_least: true
        })
    );
    let exact = Pattern::parse("{SW1:1} 00").unwrap();
    assert!(exact.check(&[0x90, 0x00, 0x00], &Variables::new()).is_err());
}

#[test]
fn variable_errors_name_their_line() {
    assert_eq!(
        syntax_error("reset\n> 00 70 80 {CHANNEL}\n< 90 00\n"),
        (
            2,
            SyntaxError::UndefinedVariable {
                name: "CHANNEL".into(),
                context: String::new()
            }
        )
    );
    // A capture counts from its own step on, not before.
    let (line, error) =
        syntax_error("> 80 14 00 00 00\n< {A} 90 00\n> 80 14 00 00 00\n< {A:1} 90 00\n");
    assert_eq!(line, 1);
    assert!(
        error
            .to_string()
            .starts_with("variable `{A}` has no value here"),
        "{error}"
    );
    assert_eq!(
        syntax_error("> 00 70 80 {CH:1}\n< 90 00\n"),
        (1, SyntaxError::CaptureInCommand("CH".into()))
    );
    assert_eq!(
        syntax_error("> 00 {CH\n< 90 00\n"),
        (1, SyntaxError::UnclosedVariable)
    );
    assert_eq!(
        syntax_error("> 0{CH}\n< 90 00\n"),
        (1, SyntaxError::NotAtByteBoundary('{'))
    );
    for (text, reason) in [
        ("< {1X:1}\n", "a name is"),
        ("< {A:0}\n", "at least one byte"),
        ("< {A:x}\n", "not a decimal"),
        ("< {A:70000}\n", "larger than"),
    ] {
        match syntax_error(&format!("> 80 14 00 00 00\n{text}")) {
            (2, SyntaxError::BadVariable { reason: r, .. }) => {
                assert!(r.contains(reason), "{text}: {r}")
            }
            other => panic!("{text}: {other:?}"),
        }
    }
    assert_eq!(
        parse_command("00 {A}"),
        Err(SyntaxError::UnexpectedVariable("A".into()))
    );
}

// ---- definitions ----

const INSTALL: &str = "\
# Title
define install AID FLAGS
> 80 E6 0C 00 1E 06 F04C4E4B43FF 07 F04C4E4B43FF00 07 {AID} 01 00 03 C9 01 {FLAGS} 00 00
< 00 90 00
> 80 F2 40 02 09 4F 07 {AID} 00
< E3 1A 4F 07 {AID} *
end
reset
call install F04C4E4B43FF02 01
";

#[test]
fn a_call_puts_the_definition_with_its_arguments_in_place() {
    let script = parse(INSTALL).unwrap();
    assert_eq!(script.title.as_deref(), Some("Title"));
    assert_eq!(script.steps.len(), 3);
    assert_eq!(script.command_count(), 2);
    let install = &script.steps[1];
    let bytes = command(install, &Variables::new());
    assert_eq!(&bytes[21..28], [0xF0, 0x4C, 0x4E, 0x4B, 0x43, 0xFF, 0x02]);
    assert_eq!(bytes[33], 0x01);
    // The step is on the call's line; where it is written is its source.
    assert_eq!(install.line, 9);
    let source = install.source.as_ref().unwrap();
    assert_eq!(
        (source.line, source.definition.as_deref()),
        (3, Some("install"))
    );
    assert_eq!(source.to_string(), "dir/test.apdu:3 in install");
    let listed = pattern(&script.steps[2]);
    let mut response = vec![
        0xE3, 0x1A, 0x4F, 0x07, 0xF0, 0x4C, 0x4E, 0x4B, 0x43, 0xFF, 0x02,
    ];
    assert!(
        listed.matches(&response),
        "arguments are exact bytes in patterns"
    );
    response[10] = 0x03;
    assert!(!listed.matches(&response));
}

#[test]
fn definitions_call_definitions_and_pass_variables_on() {
    let script = parse(
        "define close CH\n> 00 70 80 {CH}\n< 90 00\nend\n\
         define open-and-close\n> 00 70 00 00 01\n< {N:1} 90 00\ncall close {N}\nend\n\
         call open-and-close\ncall close (01*1)\n",
    )
    .unwrap();
    assert_eq!(script.steps.len(), 3);
    let mut variables = Variables::new();
    variables.set("N", vec![0x05]);
    assert_eq!(
        command(&script.steps[1], &variables),
        [0x00, 0x70, 0x80, 0x05]
    );
    assert_eq!(
        command(&script.steps[2], &variables),
        [0x00, 0x70, 0x80, 0x01]
    );
    assert_eq!(script.steps[1].line, 10);
    assert_eq!(script.steps[2].line, 11);
    // A parameter shadows nothing outside its definition: `{CH}` after the calls is a variable, never set.
    let (line, error) = syntax_error(&format!("{INSTALL}> 00 70 80 {{AID}}\n< 90 00\n"));
    assert_eq!(line, 10);
    assert!(
        matches!(error, SyntaxError::UndefinedVariable { .. }),
        "{error}"
    );
}

#[test]
fn errors_inside_a_definition_name_the_line_inside_it() {
    let text = "define broken\n> 00 A4\n< 90 0G\nend\n";
    assert_eq!(syntax_error(text), (3, SyntaxError::UnexpectedChar('G')));
    // Found when the definition is read, even if it is never called.
    assert_eq!(
        syntax_error("define broken\n> 00 A4\nend\nreset\n"),
        (
            2,
            SyntaxError::MissingResponse {
                found: "`end` at line 3".into()
            }
        )
    );
    // A variable a definition uses must be captured before the call: reported at the definition's line, with
    // the call's line as context.
    let (line, error) = syntax_error("define use\n> 00 70 80 {X}\n< 90 00\nend\nreset\ncall use\n");
    assert_eq!(line, 2);
    assert_eq!(
        error.to_string(),
        "variable `{X}` has no value here: no capture `{X:N}` comes before it (brought in by line 6 of the script)"
    );
}

#[test]
fn definition_errors() {
    for (text, line, error) in [
        (
            "call nothing\n",
            1,
            SyntaxError::UnknownDefinition("nothing".into()),
        ),
        (
            "define d A\nreset\nend\ncall d\n",
            4,
            SyntaxError::ArgumentCount {
                name: "d".into(),
                expected: 1,
                found: 0,
            },
        ),
        (
            "define d\ndefine e\n",
            2,
            SyntaxError::NestedDefinition("d".into()),
        ),
        ("end\n", 1, SyntaxError::EndWithoutDefine),
        (
            "reset\ndefine d\nreset\n",
            2,
            SyntaxError::UnclosedDefinition("d".into()),
        ),
        (
            "define d\nend\ndefine d\nend\n",
            3,
            SyntaxError::Redefinition("d".into()),
        ),
        (
            "define d A A\n",
            1,
            SyntaxError::DuplicateParameter("A".into()),
        ),
        ("define 9d\n", 1, SyntaxError::BadName("9d".into())),
        (
            "define\n",
            1,
            SyntaxError::Usage("define NAME [PARAMETER...]"),
        ),
        (
            "define d A\n> 80 14 00 00 00\n< {A:1} 90 00\nend\n",
            3,
            SyntaxError::CaptureIntoParameter("A".into()),
        ),
        (
            "define d\ninclude x.apdu\n",
            2,
            SyntaxError::NotInDefinition("include"),
        ),
        (
            "define d\nkeys x\n",
            2,
            SyntaxError::NotInDefinition("keys"),
        ),
        (
            "define d\nend\ncall\n",
            3,
            SyntaxError::Usage("call NAME [ARGUMENT...]"),
        ),
        (
            "define d A\nreset\nend\ncall d 0\n",
            4,
            SyntaxError::OddDigits,
        ),
    ] {
        assert_eq!(syntax_error(text), (line, error), "{text}");
    }
}

#[test]
fn call_arguments_split_outside_parentheses_and_braces() {
    assert_eq!(
        parser::split_arguments("  01 (SEQ 0 4)  {A} A0(00*2) "),
        ["01", "(SEQ 0 4)", "{A}", "A0(00*2)"]
    );
    assert!(parser::split_arguments(" ").is_empty());
}

// ---- includes ----

#[test]
fn included_steps_carry_the_include_line_and_their_own_place() {
    let files = Files::new("include");
    files.write(
        "lib/common.apdu",
        "# not the title\ndefine select-cm\n> 00 A4 04 0C 00\n< 90 00\nend\nreset\n",
    );
    let script = files.write(
        "s.apdu",
        "# Script title\ninclude lib/common.apdu\n\ncall select-cm\n",
    );
    let script = parse_file(&script).unwrap();
    assert_eq!(script.title.as_deref(), Some("Script title"));
    assert_eq!(script.steps.len(), 2);
    let (reset, select) = (&script.steps[0], &script.steps[1]);
    assert_eq!(reset.line, 2);
    let source = reset.source.as_ref().unwrap();
    assert_eq!(
        (source.path.clone(), source.line),
        (files.0.join("lib/common.apdu"), 6)
    );
    assert_eq!(select.line, 4);
    assert_eq!(select.source.as_ref().unwrap().line, 3);
}

#[test]
fn errors_in_included_files_name_that_file_and_line() {
    let files = Files::new("include-errors");
    files.write("lib/broken.apdu", "reset\n> 00 A4 0\n< 90 00\n");
    let script = files.write("s.apdu", "reset\ninclude lib/broken.apdu\n");
    match parse_file(&script) {
        Err(ScriptError::Syntax { path, line, error }) => {
            assert_eq!(path, files.0.join("lib/broken.apdu"));
            assert_eq!((line, error), (2, SyntaxError::OddDigits));
        }
        other => panic!("{other:?}"),
    }
    // A `>` cannot wait for its `<` across the end of an included file.
    files.write("lib/half.apdu", "> 80 14 00 00 00\n");
    let script = files.write("t.apdu", "include lib/half.apdu\n< 90 00\n");
    let error = parse_file(&script).unwrap_err();
    assert!(error.to_string().ends_with("half.apdu:1: command has no expected response: the next line must be `< ...`, found end of file"), "{error}");

    let script = files.write("u.apdu", "reset\ninclude lib/missing.apdu\n");
    let error = parse_file(&script).unwrap_err();
    assert!(
        matches!(error, ScriptError::Include { line: 2, .. }),
        "{error:?}"
    );
    let chain = card_client::error_chain(&error);
    assert!(
        chain.starts_with(&format!("{}:2: cannot include: ", script.display())),
        "{chain}"
    );
    assert!(chain.contains("missing.apdu: cannot read"), "{chain}");
}

#[test]
fn an_include_cycle_is_an_error() {
    let files = Files::new("cycle");
    files.write("lib/a.apdu", "reset\ninclude b.apdu\n");
    files.write("lib/b.apdu", "include ../lib/a.apdu\n");
    let script = files.write("s.apdu", "include lib/a.apdu\n");
    match parse_file(&script) {
        Err(ScriptError::Syntax { path, line, error }) => {
            assert_eq!((path, line), (files.0.join("lib/b.apdu"), 1));
            assert_eq!(error, SyntaxError::IncludeCycle("../lib/a.apdu".into()));
        }
        other => panic!("{other:?}"),
    }
}

// ---- keys, sessions, personalization ----

#[test]
fn session_steps_with_their_keys_and_levels() {
    let script = parse(&format!(
        "keys {KEYS}\npersonalize\nopen scp11a issuer mac-enc\n> 80 F2 80 02 02 4F 00 00\n< * 90 00\nclose\n\
         open scp11b\nopen SCP11A chained\nreset\nopen scp11a stranger\n< 69 82\npersonalize F04C4E4B43FF05\n< 90 00\n"
    ))
    .unwrap();
    let shown: Vec<String> = script.steps.iter().map(|s| s.kind.to_string()).collect();
    assert_eq!(
        shown,
        [
            "personalize",
            "open scp11a issuer mac-enc",
            "> 80 F2 80 02 02 4F 00 00",
            "close",
            "open scp11b full",
            "open scp11a chained full",
            "reset",
            "open scp11a stranger full",
            "personalize F0 4C 4E 4B 43 FF 05",
        ]
    );
    match &script.steps[5].kind {
        StepKind::Open {
            variant: SessionVariant::Scp11a(oce),
            level,
            expected: None,
            ..
        } => {
            assert_eq!(oce.credentials.chain.len(), 2);
            assert_eq!(*level, SecurityLevel::FULL);
        }
        other => panic!("{other:?}"),
    }
    match &script.steps[7].kind {
        StepKind::Open {
            expected: Some(e), ..
        } => assert_eq!((e.line, e.pattern.source()), (11, "69 82")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn session_errors() {
    assert_eq!(
        syntax_error("open scp11b\n"),
        (1, SyntaxError::NoKeys("open"))
    );
    assert_eq!(
        syntax_error("reset\npersonalize\n"),
        (2, SyntaxError::NoKeys("personalize"))
    );
    let keys = format!("keys {KEYS}\n");
    for (text, line, error) in [
        (
            "open scp11c\n",
            2,
            SyntaxError::Usage("open scp11a OCE [LEVEL]` or `open scp11b [LEVEL]"),
        ),
        (
            "open scp11a\n",
            2,
            SyntaxError::Usage("open scp11a OCE [LEVEL]` or `open scp11b [LEVEL]"),
        ),
        (
            "open scp11b full mac\n",
            2,
            SyntaxError::Usage("open scp11a OCE [LEVEL]` or `open scp11b [LEVEL]"),
        ),
        (
            "open scp11b secret\n",
            2,
            SyntaxError::UnknownLevel("secret".into()),
        ),
        (
            "open scp11a ../issuer\n",
            2,
            SyntaxError::BadName("../issuer".into()),
        ),
        ("reset\nclose\n", 3, SyntaxError::CloseWithoutSession),
        (
            "open scp11b\nreset\nclose\n",
            4,
            SyntaxError::CloseWithoutSession,
        ),
        (
            "open scp11a stranger\n< 69 82\nclose\n",
            4,
            SyntaxError::CloseWithoutSession,
        ),
        ("power off\n< 90 00\n", 3, SyntaxError::UnexpectedResponse),
        (
            "open scp11b\nclose\n< 90 00\n",
            4,
            SyntaxError::UnexpectedResponse,
        ),
        ("personalize 0\n", 2, SyntaxError::OddDigits),
    ] {
        assert_eq!(
            syntax_error(&format!("{keys}{text}")),
            (line, error),
            "{text}"
        );
    }
    // An `open` whose `<` accepts 90 00 leaves a session to close.
    assert!(parse(&format!("{keys}open scp11b\n< 90 00\nclose\n")).is_ok());
}

#[test]
fn missing_keys_are_reported_at_their_line() {
    let error = parse("reset\nkeys no/such/dir\n").unwrap_err();
    assert!(
        matches!(error, ScriptError::Fixture { line: 2, .. }),
        "{error:?}"
    );
    let chain = card_client::error_chain(&error);
    assert!(
        chain.starts_with("dir/test.apdu:2: cannot use the test keys: cannot read"),
        "{chain}"
    );
    assert!(chain.contains("card-ca.key"), "{chain}");

    let error = parse(&format!("keys {KEYS}\nreset\nopen scp11a nobody\n")).unwrap_err();
    assert_eq!(error.line(), Some(3));
    assert!(
        card_client::error_chain(&error).contains("nobody.key"),
        "{error}"
    );
}

#[test]
fn calls_that_multiply_are_bounded() {
    // Each level calls the one below ten times: level 6 would be 200,000 exchanges.
    let mut text = String::from("define l0\n> 00 00 00 00\n< 90 00\n> 00 00 00 00\n< 90 00\nend\n");
    for level in 1..=6 {
        text.push_str(&format!("define l{level}\n"));
        for _ in 0..10 {
            text.push_str(&format!("call l{}\n", level - 1));
        }
        text.push_str("end\n");
    }
    text.push_str("call l6\n");
    let too_many = matches!(
        parse(&text),
        Err(ScriptError::Syntax {
            error: SyntaxError::TooManySteps,
            ..
        })
    );
    assert!(too_many, "a script of 200,000 steps must be refused");
}
