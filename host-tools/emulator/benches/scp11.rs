//! SCP11 costs: the host's share of one handshake, wrapping a command and opening its response, a whole
//! session set-up against the in-process card, and the EC scalar multiplications the card performs per
//! handshake (counted by the card itself).
//!
//! ```sh
//! cargo bench -p emulator --bench scp11                 # 200 handshakes, 20,000 wraps
//! cargo bench -p emulator --bench scp11 -- --count 1000
//! cargo bench -p emulator --bench scp11 -- --reader "Virtual PCD 00 01"   # also through pcscd
//! ```
//!
//! With `--reader`, the card in that reader must be before issuance (OP_READY or INITIALIZED): its card manager is
//! personalized with fresh test CAs (key generated on the card), then sessions are opened through PC/SC.
//!
//! Figures are printed, never asserted: see docs/PERFORMANCE.md.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use apdu_spec::Class;
use apdu_spec::builder::Command;
use apdu_spec::gp::{CardManagerCommand, StatusScope};
use apdu_spec::scp11::Variant;
use apdu_spec::scp11::cert::{Date, Role};
use apdu_spec::scp11::session::{self, Handshake, SecureMessaging, SecurityLevel};
use card_client::card_manager::CardManagerSession;
use card_client::pcsc_channel::{DEFAULT_CARD_WAIT, PcscChannel, ReaderChoice};
use card_client::scp11::{self, Authority, Personalization, open_scp11a, open_scp11b};
use card_client::{CardChannel, error_chain};
use emulator::InProcessChannel;

/// GET STATUS of every application: `80 F2 40 02 02 4F 00 00`.
fn list_applications() -> Command {
    CardManagerCommand::GetStatus {
        scope: StatusScope::Applications,
        next: false,
        aid_prefix: &[],
    }
    .to_command()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn time<T>(count: usize, mut f: impl FnMut() -> T) -> (Duration, Duration) {
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        let start = Instant::now();
        std::hint::black_box(f());
        samples.push(start.elapsed());
    }
    samples.sort();
    let p99 = samples[(samples.len() * 99) / 100 - 1];
    (median(samples), p99)
}

fn print(what: &str, (median, p99): (Duration, Duration)) {
    println!(
        "{what:<58} median {:>9.1} µs   p99 {:>9.1} µs",
        median.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6
    );
}

/// Personalizes the card manager behind `channel` and returns its key and an issuer OCE.
fn issue(
    channel: &mut impl CardChannel,
    today: Date,
    expiration: Date,
) -> Result<([u8; 65], scp11::OceCredentials), String> {
    let card_ca = Authority::generate(b"card CA").map_err(|e| error_chain(&e))?;
    let oce_ca = Authority::generate(b"issuer CA").map_err(|e| error_chain(&e))?;
    let mut card_manager = CardManagerSession::select(channel).map_err(|e| error_chain(&e))?;
    let key = card_manager
        .personalize(&Personalization {
            instance: None,
            card_authority: &card_ca,
            subject: b"card",
            anchors: &[oce_ca.anchor()],
            today,
            expiration,
        })
        .map_err(|e| error_chain(&e))?;
    let oce = oce_ca
        .issue_oce(b"issuer", Role::Issuer, today, expiration)
        .map_err(|e| error_chain(&e))?;
    Ok((key, oce))
}

fn main() -> ExitCode {
    let mut count = 200usize;
    let mut reader = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--count" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) if n >= 100 => count = n,
                _ => {
                    eprintln!("--count needs a number of at least 100");
                    return ExitCode::FAILURE;
                }
            },
            "--reader" => match args.next() {
                Some(name) => reader = Some(name),
                None => {
                    eprintln!("--reader needs a reader name or number");
                    return ExitCode::FAILURE;
                }
            },
            "--bench" => {}
            other => {
                eprintln!("unknown argument {other}; use --count N and --reader NAME");
                return ExitCode::FAILURE;
            }
        }
    }

    let list_apdu = match list_applications().to_short() {
        Ok(apdu) => apdu,
        Err(e) => {
            eprintln!("cannot encode GET STATUS: {}", error_chain(&e));
            return ExitCode::FAILURE;
        }
    };

    // A personalized card and an issuer OCE.
    let today = Date::from_ymd(2026, 11, 24).unwrap_or(Date([0x20, 0x26, 0x11, 0x24]));
    let expiration = Date::from_ymd(2030, 1, 1).unwrap_or(Date([0x20, 0x30, 0x01, 0x01]));
    let mut card = match InProcessChannel::new() {
        Ok(card) => card,
        Err(e) => {
            eprintln!("setting up the card failed: {}", error_chain(&e));
            return ExitCode::FAILURE;
        }
    };
    let (card_key, oce) = match issue(&mut card, today, expiration) {
        Ok(setup) => setup,
        Err(e) => {
            eprintln!("setting up the card failed: {e}");
            return ExitCode::FAILURE;
        }
    };

    println!(
        "SCP11, P-256, AES-128, S8 ({count} handshakes, {} wraps)",
        count * 100
    );

    // The host's own computations in one SCP11a handshake: ephemeral key, command data, two ECDH, the KDF,
    // the receipt. (Certificate upload is sending bytes: the host does not verify its own chain.)
    let oce_static = oce.static_key;
    let card_ephemeral = match scp11::random_scalar() {
        Ok(key) => scp11::public_key_of(&key),
        Err(e) => {
            eprintln!("{}", error_chain(&e));
            return ExitCode::FAILURE;
        }
    };
    // Every step below must succeed, or the figures measure an error path: failures are counted and fail the run.
    let mut failures = 0usize;
    print(
        "host: one SCP11a handshake (keygen, 2 ECDH, KDF, receipt)",
        time(count, || {
            let handshake = || -> Result<[u8; 16], String> {
                let ephemeral = scp11::random_scalar().map_err(|e| error_chain(&e))?;
                let mut data = [0u8; 96];
                let n = Handshake::encode(
                    Variant::A,
                    SecurityLevel::FULL,
                    &scp11::public_key_of(&ephemeral),
                    &mut data,
                )
                .map_err(|e| error_chain(&e))?;
                let ee = session::ecdh(&ephemeral, &card_ephemeral).map_err(|e| error_chain(&e))?;
                let ss = session::ecdh(&oce_static, &card_key).map_err(|e| error_chain(&e))?;
                let keys = session::derive(&ee, &ss, SecurityLevel::FULL);
                Ok(session::receipt(&keys, &data[..n], &card_ephemeral))
            };
            let receipt = handshake();
            failures += usize::from(receipt.is_err());
            receipt
        }),
    );

    // Wrapping one command and opening one response (GET STATUS, 2 bytes of data out, 34 bytes back).
    let keys = session::derive(&[1; 32], &[2; 32], SecurityLevel::FULL);
    let mut host = SecureMessaging::new(&keys, &[0; 16], SecurityLevel::FULL);
    let mut card_side = SecureMessaging::new(&keys, &[0; 16], SecurityLevel::FULL);
    let get_status = list_applications();
    let secured_cla = Class::encode(0, true, false, true).unwrap_or(0x84);
    let header = [secured_cla, get_status.ins, get_status.p1, get_status.p2];
    let plain_len = get_status.data.len();
    let response_plain = [0x5Au8; 34];
    let mut wraps = Vec::with_capacity(count * 100);
    let mut unwraps = Vec::with_capacity(count * 100);
    for _ in 0..count * 100 {
        let mut buf = [0u8; 64];
        buf[..plain_len].copy_from_slice(&get_status.data);
        let start = Instant::now();
        let wrapped = host.wrap_command(header, &mut buf, plain_len);
        wraps.push(start.elapsed());
        let Ok(n) = wrapped else {
            failures += 1;
            continue;
        };
        failures += usize::from(card_side.unwrap_command(header, &mut buf[..n]).is_err());
        let mut response = [0u8; 64];
        response[..34].copy_from_slice(&response_plain);
        let Ok(m) = card_side.wrap_response(&mut response, 34, 0x9000) else {
            failures += 1;
            continue;
        };
        let start = Instant::now();
        let opened = std::hint::black_box(host.unwrap_response(&mut response[..m], 0x9000));
        unwraps.push(start.elapsed());
        failures += usize::from(opened.is_err());
    }
    let summary = |mut samples: Vec<Duration>| {
        samples.sort();
        (
            samples[samples.len() / 2],
            samples[(samples.len() * 99) / 100 - 1],
        )
    };
    print("host: wrap one command (C-MAC + C-DEC)", summary(wraps));
    print("host: open one response (R-MAC + R-ENC)", summary(unwraps));

    // Whole sessions against the in-process card (host and card work, one process).
    let before = card.card().scalar_multiplications();
    print(
        "in process: open an SCP11a session (PSO + MUTUAL AUTH)",
        time(count, || {
            let opened = open_scp11a(&mut card, &card_key, &oce, SecurityLevel::FULL, None);
            failures += usize::from(opened.is_err());
        }),
    );
    let per_a = (card.card().scalar_multiplications() - before) as f64 / count as f64;
    let before = card.card().scalar_multiplications();
    print(
        "in process: open an SCP11b session (INTERNAL AUTH)",
        time(count, || {
            let opened = open_scp11b(&mut card, &card_key, SecurityLevel::FULL);
            failures += usize::from(opened.is_err());
        }),
    );
    let per_b = (card.card().scalar_multiplications() - before) as f64 / count as f64;
    let mut session = match open_scp11a(&mut card, &card_key, &oce, SecurityLevel::FULL, None) {
        Ok(session) => session,
        Err(e) => {
            eprintln!("opening a session failed: {}", error_chain(&e));
            return ExitCode::FAILURE;
        }
    };
    print(
        "in process: one secured GET STATUS round trip",
        time(count * 10, || {
            let answer = session.transmit_secured(&list_apdu);
            failures += usize::from(!matches!(answer, Ok(r) if r.ends_with(&[0x90, 0x00])));
        }),
    );
    println!(
        "card: EC scalar multiplications per handshake: SCP11a {per_a:.0} (2 per OCE certificate \
         verified, 1 ephemeral key, 2 ECDH), SCP11b {per_b:.0}"
    );
    if failures > 0 {
        eprintln!("{failures} host-side or in-process secure-channel operations failed");
        return ExitCode::FAILURE;
    }

    if let Some(reader) = reader {
        let mut channel = match PcscChannel::open(&ReaderChoice::parse(&reader), DEFAULT_CARD_WAIT)
        {
            Ok(channel) => channel,
            Err(e) => {
                eprintln!("{reader}: {}", error_chain(&e));
                return ExitCode::FAILURE;
            }
        };
        let (key, oce) = match issue(&mut channel, today, expiration) {
            Ok(setup) => setup,
            Err(e) => {
                eprintln!("personalizing the card in {reader} failed: {e}");
                return ExitCode::FAILURE;
            }
        };
        let rounds = (count / 4).max(25);
        let mut failures = 0;
        let label = format!("PC/SC: open an SCP11a session ({rounds} times)");
        let stats = time(rounds, || {
            let opened = open_scp11a(&mut channel, &key, &oce, SecurityLevel::FULL, None);
            failures += usize::from(opened.is_err());
        });
        print(&label, stats);
        let mut session = match open_scp11a(&mut channel, &key, &oce, SecurityLevel::FULL, None) {
            Ok(session) => session,
            Err(e) => {
                eprintln!(
                    "opening a session through {reader} failed: {}",
                    error_chain(&e)
                );
                return ExitCode::FAILURE;
            }
        };
        let label = format!(
            "PC/SC: one secured GET STATUS round trip ({} times)",
            rounds * 10
        );
        let stats = time(rounds * 10, || {
            let answer = session.transmit_secured(&list_apdu);
            failures += usize::from(!matches!(answer, Ok(r) if r.ends_with(&[0x90, 0x00])));
        });
        print(&label, stats);
        if failures > 0 {
            eprintln!("{failures} secure-channel exchanges through {reader} failed");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
