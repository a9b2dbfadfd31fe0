//! `linkcard readers`, and opening a reader for the commands that take `--reader`.

use std::time::Duration;

use anyhow::Context as _;
use card_client::hex;
use card_client::pcsc_channel::{self, PcscChannel, ReaderChoice};

use crate::EXIT_OK;

pub const READERS_AFTER_HELP: &str = "\
Readers are numbered from 0; `--reader` options take a number, a full reader name, or a part of a name that
only one reader has (case-insensitive). Exit status: 0 (also with no readers), 2 when pcscd cannot be reached.";

/// Lists the readers and the card in each.
pub fn list() -> anyhow::Result<u8> {
    let readers = pcsc_channel::list_readers().context("cannot list PC/SC readers")?;
    if readers.is_empty() {
        println!("no readers");
    }
    for (index, reader) in readers.iter().enumerate() {
        match &reader.atr {
            Some(atr) => println!(
                "{index}: {}  card present, ATR {}",
                reader.name,
                hex::spaced(atr)
            ),
            None => println!("{index}: {}  no card", reader.name),
        }
    }
    Ok(EXIT_OK)
}

/// Connects to the card in `reader` (number, name or unique part of a name), waiting up to `wait` seconds.
pub fn open(reader: &str, wait: f64) -> anyhow::Result<PcscChannel> {
    let wait = Duration::try_from_secs_f64(wait).context("--wait must be a number of seconds")?;
    PcscChannel::open(&ReaderChoice::parse(reader), wait)
        .with_context(|| format!("cannot use reader \"{reader}\""))
}
