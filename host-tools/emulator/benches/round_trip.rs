//! APDU round trip: the in-process card beside a card behind pcscd, in the same run.
//!
//! ```sh
//! cargo bench -p emulator --bench round_trip                                  # in process only
//! cargo bench -p emulator --bench round_trip -- --reader "Virtual PCD 00 00" --count 2000
//! ```
//!
//! The APDU is the loopback's ECHO of 16 bytes after selecting it, so both transports carry data both ways.
//! Figures are printed, never asserted: see docs/PERFORMANCE.md.

use std::process::ExitCode;
use std::time::Duration;

use apdu_spec::aid::LOOPBACK_APPLET;
use apdu_spec::iso::{Occurrence, Select};
use apdu_spec::loopback::LoopbackCommand;
use card_client::latency::{LatencyStats, round_trip_stats};
use card_client::pcsc_channel::{DEFAULT_CARD_WAIT, PcscChannel, ReaderChoice};
use card_client::{CardChannel, error_chain};
use emulator::InProcessChannel;

const WARM_UP: usize = 50;

struct Options {
    reader: Option<String>,
    count: usize,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        reader: None,
        count: 2000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--reader" => {
                options.reader = Some(
                    args.next()
                        .ok_or("--reader needs a reader name or number")?,
                )
            }
            "--count" => {
                let count = args.next().ok_or("--count needs a number")?;
                options.count = count
                    .parse()
                    .map_err(|_| format!("--count: not a number: {count}"))?;
                if options.count < 1000 {
                    return Err("--count must be at least 1000".into());
                }
            }
            // `cargo bench` passes --bench to every bench target.
            "--bench" => {}
            other => {
                return Err(format!(
                    "unknown argument {other}; use --reader NAME and --count N"
                ));
            }
        }
    }
    Ok(options)
}

/// The ECHO of 16 bytes (`80 10 00 00 10 00 01 … 0F 00`) after SELECT of the factory loopback without FCI.
fn measure(channel: &mut dyn CardChannel, count: usize) -> Result<LatencyStats, String> {
    let select_loopback = Select::ByName {
        name: LOOPBACK_APPLET.as_bytes(),
        occurrence: Occurrence::First,
        fci: false,
    }
    .to_command()
    .to_short()
    .map_err(|e| error_chain(&e))?;
    let data: Vec<u8> = (0..16).collect();
    let echo_16 = LoopbackCommand::Echo(&data)
        .to_command()
        .to_short()
        .map_err(|e| error_chain(&e))?;
    let selected = channel
        .transmit(&select_loopback)
        .map_err(|e| error_chain(&e))?;
    if selected != [0x90, 0x00] {
        return Err(format!(
            "selecting the loopback applet answered {selected:02X?}"
        ));
    }
    round_trip_stats(channel, &echo_16, WARM_UP).map_err(|e| error_chain(&e))?;
    round_trip_stats(channel, &echo_16, count)
        .map_err(|e| error_chain(&e))?
        .ok_or_else(|| "no samples".to_owned())
}

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn print_row(transport: &str, stats: &LatencyStats) {
    println!(
        "{transport:<34} {:>6} {:>11} {:>11} {:>11} {:>11} {:>11}",
        stats.count,
        micros(stats.min),
        micros(stats.median),
        micros(stats.mean),
        micros(stats.p99),
        micros(stats.max)
    );
}

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("round_trip: {message}");
            return ExitCode::from(2);
        }
    };
    println!(
        "APDU round trip: ECHO of 16 bytes to the loopback applet (80 10 00 00 10 … 00), {} APDUs",
        options.count
    );
    println!(
        "{:<34} {:>6} {:>11} {:>11} {:>11} {:>11} {:>11}",
        "transport", "APDUs", "min", "median", "mean", "p99", "max"
    );
    let mut in_process = match InProcessChannel::new() {
        Ok(channel) => channel,
        Err(e) => {
            eprintln!("round_trip: in process: {}", error_chain(&e));
            return ExitCode::FAILURE;
        }
    };
    match measure(&mut in_process, options.count) {
        Ok(stats) => print_row("in process", &stats),
        Err(e) => {
            eprintln!("round_trip: in process: {e}");
            return ExitCode::FAILURE;
        }
    }
    if let Some(reader) = &options.reader {
        let result = PcscChannel::open(&ReaderChoice::parse(reader), DEFAULT_CARD_WAIT)
            .map_err(|e| error_chain(&e))
            .and_then(|mut channel| {
                let label = format!("pcscd: {}", channel.reader_name());
                measure(&mut channel, options.count).map(|stats| (label, stats))
            });
        match result {
            Ok((label, stats)) => print_row(&label, &stats),
            Err(e) => {
                eprintln!("round_trip: reader {reader}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
