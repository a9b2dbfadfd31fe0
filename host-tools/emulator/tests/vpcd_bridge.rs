//! The vpcd bridge against a fake vpcd: a TCP server on 127.0.0.1 speaking vpcd's framing (u16 length + payload).
//!
//! Every wait is bounded (accept, reads, joins), so a broken bridge fails these tests instead of hanging them.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use apdu_spec::Class;
use apdu_spec::aid::{self, Aid};
use apdu_spec::builder::Command;
use apdu_spec::gp::{CardManagerCommand, InstallRequest, StatusScope};
use apdu_spec::iso::{ManageChannel, Occurrence, Select};
use apdu_spec::loopback::{LoopbackCommand, flags};
use card_image::LinkcardCard;
use emulator::vpcd::{self, Endpoint, Stop};

const TIMEOUT: Duration = Duration::from_secs(5);

/// The fake vpcd side of one connection.
struct FakeVpcd {
    connection: TcpStream,
}

impl FakeVpcd {
    /// Waits (at most [`TIMEOUT`]) for the bridge to connect.
    fn accept(listener: &TcpListener) -> Self {
        listener.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + TIMEOUT;
        let connection = loop {
            match listener.accept() {
                Ok((connection, _)) => break connection,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(
                        Instant::now() < deadline,
                        "the bridge did not connect within {TIMEOUT:?}"
                    );
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("accept failed: {e}"),
            }
        };
        connection.set_nonblocking(false).unwrap();
        connection.set_read_timeout(Some(TIMEOUT)).unwrap();
        connection.set_write_timeout(Some(TIMEOUT)).unwrap();
        Self { connection }
    }

    fn send(&mut self, payload: &[u8]) {
        let mut message = (payload.len() as u16).to_be_bytes().to_vec();
        message.extend_from_slice(payload);
        self.connection.write_all(&message).unwrap();
    }

    fn receive(&mut self) -> Vec<u8> {
        let mut length = [0u8; 2];
        self.connection
            .read_exact(&mut length)
            .expect("a reply within the timeout");
        let mut payload = vec![0u8; usize::from(u16::from_be_bytes(length))];
        self.connection.read_exact(&mut payload).unwrap();
        payload
    }

    fn exchange(&mut self, apdu: &[u8]) -> Vec<u8> {
        self.send(apdu);
        self.receive()
    }

    /// Sends a control byte (power off/on, reset): vpcd expects no reply to these.
    fn control(&mut self, byte: u8) {
        self.send(&[byte]);
    }
}

/// Runs the bridge for one virtual card in a thread.
fn spawn_bridge(port: u16, slot: u16) -> (Arc<Stop>, JoinHandle<()>) {
    let endpoint = Endpoint {
        host: "127.0.0.1".into(),
        port,
        slot,
    };
    let stop = Stop::new();
    let bridge_stop = Arc::clone(&stop);
    let bridge = std::thread::spawn(move || {
        let mut card = Box::new(LinkcardCard::new());
        vpcd::run(&endpoint, card.as_mut(), &bridge_stop, &|_| {}).unwrap();
    });
    (stop, bridge)
}

/// Requests a stop and waits (at most [`TIMEOUT`]) for the bridge to end.
fn stop_and_join(stop: &Stop, bridge: JoinHandle<()>) {
    stop.request();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(bridge.join().is_ok()));
    assert_eq!(
        finished.recv_timeout(TIMEOUT),
        Ok(true),
        "the bridge did not end after the stop request"
    );
}

fn hex(text: &str) -> Vec<u8> {
    let digits: String = text.split_whitespace().collect();
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
        .collect()
}

const ISD_FCI: &str = "6F 10 84 08 A0 00 00 01 51 00 00 00 A5 04 9F 65 01 FF 90 00";

fn bytes(command: Command) -> Vec<u8> {
    command.to_bytes().unwrap()
}

/// `00 A4 04 00 08 A000000151000000 00`.
fn select_isd() -> Vec<u8> {
    bytes(Select::aid(aid::CARD_MANAGER.as_bytes()).to_command())
}

/// The loopback instance `F04C4E4B43FF<n>`.
fn loopback(n: u8) -> Aid {
    aid::LOOPBACK_LOAD_FILE.with_suffix(n).unwrap()
}

/// INSTALL [for install and make selectable] of a loopback instance with `flags`, asking for the answer's byte.
fn install_loopback(application: &Aid, flags: u8) -> Vec<u8> {
    let install = CardManagerCommand::Install(InstallRequest {
        install: true,
        make_selectable: true,
        load_file: aid::LOOPBACK_LOAD_FILE.as_bytes(),
        module: aid::LOOPBACK_MODULE.as_bytes(),
        application: application.as_bytes(),
        privileges: &[0x00],
        applet_parameters: &[flags],
    });
    bytes(install.to_command().with_ne(256))
}

fn get_status(scope: StatusScope) -> Vec<u8> {
    bytes(
        CardManagerCommand::GetStatus {
            scope,
            next: false,
            aid_prefix: &[],
        }
        .to_command(),
    )
}

#[test]
fn speaks_the_vpcd_protocol_and_survives_reconnection() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let (stop, bridge) = spawn_bridge(listener.local_addr().unwrap().port(), 0);
    let mut vpcd = FakeVpcd::accept(&listener);

    // ATR request, then power on and an APDU.
    assert_eq!(vpcd.exchange(&[0x04]), LinkcardCard::ATR.as_bytes());
    vpcd.control(0x01);
    assert_eq!(vpcd.exchange(&select_isd()), hex(ISD_FCI));

    // One-byte messages that are not control codes, empty and oversize messages: 67 00, and the stream stays in
    // step. (Raw on purpose: none of them is a command.)
    assert_eq!(vpcd.exchange(&[0x07]), hex("67 00"));
    assert_eq!(vpcd.exchange(&[]), hex("67 00"));
    assert_eq!(vpcd.exchange(&vec![0x80; 5000]), hex("67 00"));
    assert_eq!(vpcd.exchange(&select_isd()), hex(ISD_FCI));

    // Reset clears transient state: an open logical channel is closed.
    let open_channel = bytes(ManageChannel::Open(None).to_command());
    assert_eq!(vpcd.exchange(&open_channel), hex("01 90 00"));
    vpcd.control(0x02);
    let mut select_on_channel_1 = Select::ByName {
        name: &[],
        occurrence: Occurrence::First,
        fci: true,
    }
    .to_command();
    select_on_channel_1.cla = Class::encode(1, false, false, false).unwrap();
    assert_eq!(vpcd.exchange(&bytes(select_on_channel_1)), hex("68 81"));

    // Power off: the card answers nothing useful until powered again.
    vpcd.control(0x00);
    assert_eq!(vpcd.exchange(&select_isd()), hex("6F 00"));
    vpcd.control(0x01);

    // Install an instance, drop the connection (pcscd restarting), accept the reconnection: the instance is there.
    let install = install_loopback(&loopback(0x02), flags::MULTI_SELECTABLE);
    assert_eq!(vpcd.exchange(&install), hex("00 90 00"));
    drop(vpcd);
    let mut vpcd = FakeVpcd::accept(&listener);
    vpcd.control(0x01);
    let select = Select::aid(loopback(0x02).as_bytes()).to_command();
    assert_eq!(
        vpcd.exchange(&bytes(select)),
        hex("6F 09 84 07 F04C4E4B43FF02 90 00")
    );

    // A stop request ends the bridge even while it waits in a read.
    stop_and_join(&stop, bridge);
}

#[test]
fn the_largest_command_reaches_the_card_and_one_byte_more_does_not() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let (stop, bridge) = spawn_bridge(listener.local_addr().unwrap().port(), 0);
    let mut vpcd = FakeVpcd::accept(&listener);
    vpcd.control(0x01);

    // A loopback instance that takes extended length, selected on channel 0.
    let extended = loopback(0x03);
    let install = install_loopback(&extended, flags::EXTENDED_LENGTH);
    assert_eq!(vpcd.exchange(&install), hex("00 90 00"));
    let select = Select::ByName {
        name: extended.as_bytes(),
        occurrence: Occurrence::First,
        fci: false,
    };
    assert_eq!(vpcd.exchange(&bytes(select.to_command())), hex("90 00"));

    // ECHO of a full chain buffer: header, extended Lc, the data, extended Le (00 00: all of it) — the largest
    // message accepted.
    let data: Vec<u8> = (0..card_os::CHAIN_BUFFER).map(|i| i as u8).collect();
    let echo = LoopbackCommand::Echo(&data)
        .to_command()
        .with_ne(65536)
        .to_extended()
        .unwrap();
    assert_eq!(echo.len(), 4 + 3 + card_os::CHAIN_BUFFER + 2);
    let mut expected = data.clone();
    expected.extend_from_slice(&[0x90, 0x00]);
    assert_eq!(vpcd.exchange(&echo), expected);

    // One byte more (a malformed APDU, so raw) is refused by the bridge, read to its end, and the next command
    // is answered.
    let mut too_long = echo.clone();
    too_long.push(0x00);
    assert_eq!(vpcd.exchange(&too_long), hex("67 00"));
    assert_eq!(
        vpcd.exchange(&bytes(LoopbackCommand::Echo(&[0xCA, 0xFE]).to_command())),
        hex("CA FE 90 00")
    );

    // The largest message vpcd's framing can carry (65535 bytes) is also read away completely.
    assert_eq!(vpcd.exchange(&vec![0xA5; 0xFFFF]), hex("67 00"));
    assert_eq!(vpcd.exchange(&[0x04]), LinkcardCard::ATR.as_bytes());

    stop_and_join(&stop, bridge);
}

#[test]
fn stop_ends_the_retry_loop_when_nothing_listens() {
    // Bind and drop to get a port where nothing listens.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (stop, bridge) = spawn_bridge(port, 1);
    std::thread::sleep(Duration::from_millis(200));
    stop_and_join(&stop, bridge);
}

impl card_client::CardChannel for FakeVpcd {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, card_client::ChannelError> {
        Ok(self.exchange(apdu))
    }
    fn reset(&mut self) -> Result<Vec<u8>, card_client::ChannelError> {
        self.control(0x02);
        Ok(LinkcardCard::ATR.as_bytes().to_vec())
    }
    fn power_off(&mut self) -> Result<(), card_client::ChannelError> {
        self.control(0x00);
        Ok(())
    }
    fn power_on(&mut self) -> Result<Vec<u8>, card_client::ChannelError> {
        self.control(0x01);
        Ok(LinkcardCard::ATR.as_bytes().to_vec())
    }
    fn describe(&self) -> String {
        "fake vpcd".into()
    }
}

/// The emulator seeds the card's random generator at every power-on: personalization (key generation on the
/// card) and an SCP11 session work through the bridge, and a power cycle ends the session.
#[test]
fn secure_channel_through_the_bridge() {
    use apdu_spec::scp11::cert::{Date, Role};
    use apdu_spec::scp11::session::SecurityLevel;
    use card_client::scp11::{self, Authority, Personalization};

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let (stop, bridge) = spawn_bridge(listener.local_addr().unwrap().port(), 0);
    let mut vpcd = FakeVpcd::accept(&listener);
    vpcd.control(0x01);
    assert_eq!(vpcd.exchange(&select_isd()), hex(ISD_FCI));
    let today = Date::from_ymd(2026, 11, 24).unwrap();
    let card_ca = Authority::generate(b"card CA").unwrap();
    let issuer_ca = Authority::generate(b"issuer CA").unwrap();
    let card_key = scp11::personalize(
        &mut vpcd,
        &Personalization {
            instance: None,
            card_authority: &card_ca,
            subject: b"virtual card",
            anchors: &[issuer_ca.anchor()],
            today,
            expiration: Date::from_ymd(2030, 1, 1).unwrap(),
        },
    )
    .unwrap();
    let issuer = issuer_ca
        .issue_oce(
            b"issuer",
            Role::Issuer,
            today,
            Date::from_ymd(2027, 1, 1).unwrap(),
        )
        .unwrap();
    let mut session =
        scp11::open_scp11a(&mut vpcd, &card_key, &issuer, SecurityLevel::FULL, None).unwrap();
    let listing = session
        .transmit_secured(&get_status(StatusScope::Applications))
        .unwrap();
    assert_eq!(&listing[listing.len() - 2..], &[0x90, 0x00]);
    assert!(
        listing.windows(7).any(|w| w == hex("F04C4E4B43FF01")),
        "the loopback is listed"
    );
    let next = session
        .wrap(&get_status(StatusScope::Applications))
        .unwrap()
        .remove(0);
    session.inner().control(0x00);
    session.inner().control(0x01);
    assert_eq!(session.inner().exchange(&select_isd()), hex(ISD_FCI));
    assert_eq!(
        session.inner().exchange(&next),
        hex("69 82"),
        "no session after a power cycle"
    );
    // A new session after the power cycle: the card was seeded again.
    let mut session = scp11::open_scp11b(&mut vpcd, &card_key, SecurityLevel::MAC).unwrap();
    let isd = session
        .transmit_secured(&get_status(StatusScope::IssuerSecurityDomain))
        .unwrap();
    assert_eq!(&isd[isd.len() - 2..], &[0x90, 0x00]);
    assert!(
        isd.windows(8).any(|w| w == hex("A000000151000000")),
        "the card manager is listed"
    );
    stop_and_join(&stop, bridge);
}
