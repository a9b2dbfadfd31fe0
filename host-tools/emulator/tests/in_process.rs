//! The in-process card as a channel: powered and answering, its trace, and round-trip statistics over it.

use std::io::Write;
use std::sync::{Arc, Mutex};

use apdu_spec::aid::CARD_MANAGER;
use apdu_spec::iso::Select;
use card_client::latency::round_trip_stats;
use card_client::{CardChannel, Traced};
use emulator::InProcessChannel;

/// `00 A4 04 00 08 A000000151000000 00`.
fn select_card_manager() -> Vec<u8> {
    Select::aid(CARD_MANAGER.as_bytes())
        .to_command()
        .to_short()
        .unwrap()
}

/// An instruction no application on the card knows (6D00): raw, since no typed command means nothing.
const UNKNOWN_INSTRUCTION: [u8; 4] = [0x80, 0xFF, 0x00, 0x00];

#[derive(Clone, Default)]
struct SharedLog(Arc<Mutex<Vec<u8>>>);

impl Write for SharedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SharedLog {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

#[test]
fn in_process_card_is_powered_and_answers() {
    let mut channel = InProcessChannel::new().unwrap();
    assert!(channel.card().is_powered());
    let response = channel.transmit(&select_card_manager()).unwrap();
    assert_eq!(&response[response.len() - 2..], &[0x90, 0x00]);
}

#[test]
fn unpowered_card_answers_for_itself() {
    let mut channel = InProcessChannel::new().unwrap();
    channel.power_off().unwrap();
    // The card's own answer when unpowered, passed through rather than turned into an error.
    assert_eq!(
        channel.transmit(&select_card_manager()).unwrap(),
        [0x6F, 0x00]
    );
    let atr = channel.power_on().unwrap();
    assert_eq!(atr.first(), Some(&0x3B));
    assert_eq!(channel.reset().unwrap(), atr);
    assert_eq!(atr, emulator::atr());
}

#[test]
fn trace_reads_like_opensc_tool() {
    let log = SharedLog::default();
    let mut channel = Traced::with_log(InProcessChannel::new().unwrap(), Box::new(log.clone()));
    channel.reset().unwrap();
    channel.transmit(&select_card_manager()).unwrap();
    channel.transmit(&UNKNOWN_INSTRUCTION).unwrap();
    channel.power_off().unwrap();
    let text = log.text();
    assert!(text.starts_with("Reset: ATR 3B "), "{text}");
    assert!(
        text.contains("Sending: 00 A4 04 00 08 A0 00 00 01 51 00 00 00 00\n"),
        "{text}"
    );
    assert!(
        text.contains("Received (SW1=0x90, SW2=0x00): SUCCESS\n6F "),
        "{text}"
    );
    assert!(
        text.contains("Received (SW1=0x6D, SW2=0x00) INS_NOT_SUPPORTED\n"),
        "{text}"
    );
    assert!(text.ends_with("Power off\n"), "{text}");
}

#[test]
fn measures_the_in_process_card() {
    let mut channel = InProcessChannel::new().unwrap();
    let stats = round_trip_stats(&mut channel, &select_card_manager(), 10)
        .unwrap()
        .unwrap();
    assert_eq!(stats.count, 10);
    assert!(stats.min <= stats.median && stats.median <= stats.p99 && stats.p99 <= stats.max);
    let error = round_trip_stats(&mut channel, &UNKNOWN_INSTRUCTION, 1).unwrap_err();
    assert!(error.to_string().contains("6D 00"), "{error}");
}
