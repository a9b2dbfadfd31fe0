//! The card enforces `apdu_spec::gp::REQUIREMENTS` as the table says: once issued, every card-manager command
//! that needs an issuer session is refused in the clear (6982), and the ones that need nothing are answered;
//! before issuance the same commands pass the security check.

use apdu_spec::gp::{CardManagerCommand, InstallRequest, SetStatusTarget, StatusScope};
use apdu_spec::iso::Select;
use apdu_spec::scp11::Plain;
use card_image::LinkcardCard;

const NEW_INSTANCE: &[u8] = &[0xF0, 0x4C, 0x4E, 0x4B, 0x43, 0xFF, 0x05];

fn send(card: &mut LinkcardCard, command: apdu_spec::builder::Command) -> u16 {
    let mut out = vec![0u8; card_os::RESPONSE_BUFFER + 2];
    let n = card.transmit(&command.to_bytes().unwrap(), &mut out);
    u16::from_be_bytes([out[n - 2], out[n - 1]])
}

/// One command of each kind in the table (with data that is otherwise acceptable).
fn commands() -> Vec<CardManagerCommand<'static>> {
    let loopback = apdu_spec::aid::LOOPBACK_APPLET.as_bytes();
    vec![
        CardManagerCommand::GetStatus {
            scope: StatusScope::Applications,
            next: false,
            aid_prefix: &[],
        },
        CardManagerCommand::Install(InstallRequest {
            install: true,
            make_selectable: true,
            load_file: apdu_spec::aid::LOOPBACK_LOAD_FILE.as_bytes(),
            module: apdu_spec::aid::LOOPBACK_MODULE.as_bytes(),
            application: NEW_INSTANCE,
            privileges: &[0x00],
            applet_parameters: &[],
        }),
        CardManagerCommand::InstallForPersonalization { aid: loopback },
        CardManagerCommand::StoreData {
            data: &[0xDF, 0x22, 0x04, 0x20, 0x26, 0x12, 0x01],
        },
        CardManagerCommand::StoreData {
            data: &[0xDF, 0x20, 0x01, 0x01],
        },
        CardManagerCommand::Delete { aid: loopback },
        CardManagerCommand::SetStatus {
            target: SetStatusTarget::Application,
            state: 0x83,
            aid: loopback,
        },
    ]
}

fn card_in(states: &[u8]) -> LinkcardCard {
    let mut card = LinkcardCard::new();
    card.power_on();
    assert_eq!(send(&mut card, Select::aid(&[]).to_command()), 0x9000);
    for &state in states {
        let set = CardManagerCommand::SetStatus {
            target: SetStatusTarget::Card,
            state,
            aid: &[],
        };
        assert_eq!(send(&mut card, set.to_command()), 0x9000);
    }
    card
}

#[test]
fn plain_commands_meet_the_table_once_issued() {
    let mut names = Vec::new();
    for command in commands() {
        let mut card = card_in(&[0x07, 0x0F]); // INITIALIZED, then SECURED
        let status = send(&mut card, command.to_command());
        let refused_in_the_clear = command.requirement().plain != Plain::Allowed;
        assert_eq!(
            status == 0x6982,
            refused_in_the_clear,
            "{}: {status:04X}",
            command.name()
        );
        names.push(command.name());
    }
    for (name, _) in apdu_spec::gp::REQUIREMENTS {
        assert!(names.contains(&name), "no command exercises {name}");
    }
}

#[test]
fn before_issuance_the_factory_passes_the_check() {
    for command in commands() {
        let mut card = card_in(&[]);
        let status = send(&mut card, command.to_command());
        assert_ne!(status, 0x6982, "{}", command.name());
    }
}
