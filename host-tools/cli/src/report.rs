//! What a role command prints: a sentence for people, or with `--json` one JSON object for machines.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;

/// The `--json` flag every reporting command has.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct JsonFlag {
    /// Print the result as one JSON object instead of a sentence.
    #[arg(long)]
    pub json: bool,
}

/// Prints `text`, or `value` as JSON.
pub fn emit(json: JsonFlag, text: &str, value: &serde_json::Value) {
    if json.json {
        print_line(&serde_json::to_string_pretty(value).unwrap_or_default());
    } else {
        print_line(text);
    }
}

/// One line on standard output. A reader that closed the pipe (`| head`, `| grep -q`) wanted no more: that is
/// not an error of the command, whose work is done (and committed) by the time it reports; `println!` would
/// panic there.
pub fn print_line(text: &str) {
    if let Err(error) = writeln!(std::io::stdout().lock(), "{text}")
        && error.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("linkcard: cannot write the report to standard output: {error}");
    }
}

/// Writes a new file (never over an existing one: a bundle sent is a record).
pub fn write_new(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// An organisation id given on the command line: 1-16 printable ASCII characters.
pub fn parse_id(text: &str) -> Result<String, String> {
    let printable = text.bytes().all(|b| b.is_ascii_graphic());
    if (1..=16).contains(&text.len()) && printable {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "{text:?} is not an organisation id: 1-16 printable ASCII characters, no spaces (BANK0001)"
        ))
    }
}

/// An ISO 4217 numeric currency code.
pub fn parse_currency(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(code @ 1..=999) => Ok(code),
        _ => Err(format!(
            "{text:?} is not an ISO 4217 numeric currency: 1-999 (392 yen, 978 euro, 840 dollar)"
        )),
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
