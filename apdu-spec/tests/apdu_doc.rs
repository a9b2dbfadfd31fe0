//! `docs/apdu.md` is the command set the code implements: every table in it is rendered from a `COMMANDS`
//! catalogue in `apdu-spec`, every catalogue row is checked against an example encoded by the command's real
//! encoder (CLA, INS, P1 and P2), and where a command family declares its security requirements
//! (`REQUIREMENTS`), the rows carry exactly those.
//!
//! A new applet adds one entry to [`FAMILIES`] (its catalogue, its requirements and a function that encodes one
//! example of each of its commands).

use apdu_spec::builder::Command;
use apdu_spec::command::{CommandDoc, CommandView};
use apdu_spec::gp::{self, CardManagerCommand, InstallRequest, SetStatusTarget, StatusScope};
use apdu_spec::iso::{self, ManageChannel, Occurrence, Select};
use apdu_spec::loopback::{self, LoopbackCommand};
use apdu_spec::scp11::{self, HandshakeCommand, KeyReference, Requirement};
use apdu_spec::{bank, bank::BankCommand, bank::Personalization, credit, ins};

/// A row name, the command as the real encoder builds it, and the requirement the typed command reports of
/// itself (where it does).
type Example = (&'static str, Command, Option<Requirement>);

/// One section of `docs/apdu.md`.
struct Family {
    /// What the section is about (for messages).
    title: &'static str,
    /// Its commands.
    commands: &'static [CommandDoc],
    /// The requirement table the card enforces for this family, if it has one: each row's requirement must be
    /// the one of its name, and every name must have a row.
    requirements: &'static [(&'static str, Requirement)],
    /// At least one example of every row.
    examples: fn() -> Vec<Example>,
}

const FAMILIES: &[Family] = &[
    Family {
        title: "runtime",
        commands: iso::COMMANDS,
        requirements: &[],
        examples: runtime_examples,
    },
    Family {
        title: "SCP11 handshake",
        commands: scp11::commands::COMMANDS,
        requirements: &[],
        examples: handshake_examples,
    },
    Family {
        title: "card manager",
        commands: gp::COMMANDS,
        requirements: &gp::REQUIREMENTS,
        examples: card_manager_examples,
    },
    Family {
        title: "loopback applet",
        commands: loopback::COMMANDS,
        requirements: &[],
        examples: loopback_examples,
    },
    Family {
        title: "bank applet",
        commands: bank::COMMANDS,
        requirements: &bank::REQUIREMENTS,
        examples: bank_examples,
    },
    Family {
        title: "credit applet",
        commands: credit::COMMANDS,
        requirements: &credit::REQUIREMENTS,
        examples: credit_examples,
    },
];

const AID: &[u8] = &[0xF0, 0x4C, 0x4E, 0x4B, 0x43, 0xFF, 0x05];

fn runtime_examples() -> Vec<Example> {
    let by_name = |occurrence, fci| Select::ByName {
        name: AID,
        occurrence,
        fci,
    };
    vec![
        ("SELECT by name", Select::aid(AID).to_command(), None),
        ("SELECT by name", Select::aid(&[]).to_command(), None),
        (
            "SELECT by name",
            by_name(Occurrence::Next, true).to_command(),
            None,
        ),
        (
            "SELECT by name",
            by_name(Occurrence::First, false).to_command(),
            None,
        ),
        (
            "SELECT by name",
            by_name(Occurrence::Next, false).to_command(),
            None,
        ),
        (
            "SELECT by file",
            Select::File { p1: 0x00 }.to_command(),
            None,
        ),
        (
            "SELECT by file",
            Select::File { p1: 0x09 }.to_command(),
            None,
        ),
        (
            "MANAGE CHANNEL open",
            ManageChannel::Open(None).to_command(),
            None,
        ),
        (
            "MANAGE CHANNEL open",
            ManageChannel::Open(Some(19)).to_command(),
            None,
        ),
        (
            "MANAGE CHANNEL close",
            ManageChannel::Close(None).to_command(),
            None,
        ),
        (
            "MANAGE CHANNEL close",
            ManageChannel::Close(Some(3)).to_command(),
            None,
        ),
        // GET RESPONSE has no typed encoder: this is what `card_client::t0` sends.
        (
            "GET RESPONSE",
            Command::new(0x00, ins::GET_RESPONSE, 0x00, 0x00).with_ne(256),
            None,
        ),
    ]
}

fn handshake_examples() -> Vec<Example> {
    let key = |kid| KeyReference { kvn: 0x01, kid };
    let upload = |kid, more| HandshakeCommand::UploadCertificate {
        key: key(kid),
        more,
        certificate: &[0x7F, 0x21, 0x00],
    };
    vec![
        (
            "GET DATA (certificate store)",
            HandshakeCommand::GetCertificates { key: None }.to_command(),
            None,
        ),
        (
            "GET DATA (certificate store)",
            HandshakeCommand::GetCertificates {
                key: Some(key(scp11::KID_SCP11A)),
            }
            .to_command(),
            None,
        ),
        (
            "PERFORM SECURITY OPERATION",
            upload(scp11::KID_OCE, true).to_command(),
            None,
        ),
        (
            "PERFORM SECURITY OPERATION",
            upload(0x2F, false).to_command(),
            None,
        ),
        (
            "MUTUAL AUTHENTICATE (SCP11a)",
            HandshakeCommand::MutualAuthenticate {
                key: key(scp11::KID_SCP11A),
                data: &[0xA6, 0x00],
            }
            .to_command(),
            None,
        ),
        (
            "INTERNAL AUTHENTICATE (SCP11b)",
            HandshakeCommand::InternalAuthenticate {
                key: key(scp11::KID_SCP11B),
                data: &[0xA6, 0x00],
            }
            .to_command(),
            None,
        ),
    ]
}

fn card_manager_examples() -> Vec<Example> {
    let install = |install, make_selectable| InstallRequest {
        install,
        make_selectable,
        load_file: if install { &AID[..6] } else { &[] },
        module: if install { AID } else { &[] },
        application: AID,
        privileges: &[0x00],
        applet_parameters: &[],
    };
    let mut commands = vec![
        CardManagerCommand::Install(install(true, false)),
        CardManagerCommand::Install(install(false, true)),
        CardManagerCommand::Install(install(true, true)),
        CardManagerCommand::InstallForPersonalization { aid: AID },
        CardManagerCommand::StoreData {
            data: &[0xDF, 0x23, 0x00],
        },
        CardManagerCommand::StoreData {
            data: &[0xDF, 0x20, 0x01, 0x07],
        },
        CardManagerCommand::Delete { aid: AID },
        CardManagerCommand::SetStatus {
            target: SetStatusTarget::Card,
            state: 0x0F,
            aid: &[],
        },
        CardManagerCommand::SetStatus {
            target: SetStatusTarget::Application,
            state: 0x83,
            aid: AID,
        },
    ];
    for scope in [
        StatusScope::IssuerSecurityDomain,
        StatusScope::Applications,
        StatusScope::LoadFiles,
        StatusScope::LoadFilesAndModules,
    ] {
        for next in [false, true] {
            commands.push(CardManagerCommand::GetStatus {
                scope,
                next,
                aid_prefix: &[],
            });
        }
    }
    commands
        .into_iter()
        .map(|c| (c.name(), c.to_command(), Some(c.requirement())))
        .collect()
}

fn loopback_examples() -> Vec<Example> {
    let server = AID;
    [
        ("ECHO", LoopbackCommand::Echo(&[1, 2, 3])),
        ("GENERATE", LoopbackCommand::Generate(300)),
        ("INFO", LoopbackCommand::Info),
        (
            "PUT",
            LoopbackCommand::Put {
                key: 4,
                data: &[9],
                leave_open: false,
            },
        ),
        (
            "PUT",
            LoopbackCommand::Put {
                key: 4,
                data: &[9],
                leave_open: true,
            },
        ),
        ("GET", LoopbackCommand::Get(4)),
        ("REMOVE", LoopbackCommand::Remove(4)),
        (
            "CALL",
            LoopbackCommand::Call {
                server,
                request: &[0, 0],
            },
        ),
        (
            "TRANSFER",
            LoopbackCommand::Transfer {
                key: 1,
                server,
                commit: true,
            },
        ),
        (
            "TRANSFER",
            LoopbackCommand::Transfer {
                key: 1,
                server,
                commit: false,
            },
        ),
    ]
    .into_iter()
    .map(|(name, c)| (name, c.to_command(), None))
    .collect()
}

fn bank_examples() -> Vec<Example> {
    let personalization = Personalization {
        bank_id: b"BANK0001",
        account: b"DE89370400440532013000",
        user_id: b"user-42",
        user_name: b"Erika Mustermann",
        credit_applet: AID,
    };
    [
        BankCommand::Personalize(personalization),
        BankCommand::ReadAccount,
        BankCommand::StoreToken(&[0x7F, 0x71, 0x01, 0x00]),
        BankCommand::ListTokens,
        BankCommand::DeleteToken(&[7; apdu_spec::token::TOKEN_ID_LENGTH]),
    ]
    .into_iter()
    .map(|c| (c.name(), c.to_command(), Some(c.requirement())))
    .collect()
}

fn credit_examples() -> Vec<Example> {
    let personalization = credit::Personalization {
        credit_id: b"CRED0001",
        pan: &[0x45, 0x39, 0x12, 0x34, 0x56, 0x78, 0x90, 0x12],
        expiry: &[0x29, 0x12],
        cardholder_id: b"holder-7",
        status: 0,
        atc_limit: 65_535,
        signing_key: &[0x11; 32],
        bank_applet: Some(apdu_spec::aid::BANK_APPLET.as_bytes()),
        pin: Some(credit::CardholderPin {
            digits: b"2468",
            try_limit: 3,
        }),
    };
    let presentation = credit::Presentation {
        nonce: &[0x22; 16],
        amount: 1_250,
        currency: 978,
    };
    let ids = [0x33; apdu_spec::token::TOKEN_ID_LENGTH];
    [
        credit::CreditCommand::Personalize(personalization),
        credit::CreditCommand::StoreToken(&[0x7F, 0x71, 0x01, 0x00]),
        credit::CreditCommand::Present(presentation),
        credit::CreditCommand::Confirm(credit::Confirmation::new(7, &ids).unwrap()),
        credit::CreditCommand::Verify(Some(b"2468")),
    ]
    .into_iter()
    .map(|c| (c.name(), c.to_command(), Some(c.requirement())))
    .collect()
}

/// The markdown table of a catalogue, as `docs/apdu.md` shows it.
fn render(commands: &[CommandDoc]) -> String {
    let mut table = String::from(
        "| command | CLA INS | P1 | P2 | data | response | status words (besides 9000) | needs |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for c in commands {
        let status = if c.status.is_empty() {
            "—".to_string()
        } else {
            c.status
                .iter()
                .map(|(sw, meaning)| format!("`{:04X}` {meaning}", sw.0))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let mut needs = String::new();
        c.requirement.describe(&mut needs).unwrap();
        table.push_str(&format!(
            "| {} | `{:02X} {:02X}` | {} | {} | {} | {} | {status} | {needs} |\n",
            c.name, c.cla, c.ins, c.p1, c.p2, c.data, c.response
        ));
    }
    table
}

#[test]
fn every_row_matches_its_encoder() {
    for family in FAMILIES {
        let title = family.title;
        let examples = (family.examples)();
        for (i, row) in family.commands.iter().enumerate() {
            assert!(
                family.commands[..i].iter().all(|r| r.name != row.name),
                "{title}: {} is listed twice",
                row.name
            );
            assert!(
                examples.iter().any(|(name, ..)| *name == row.name),
                "{title}: no example encodes {}",
                row.name
            );
            for cell in [row.data, row.response]
                .into_iter()
                .chain(row.status.iter().map(|(_, m)| *m))
            {
                assert!(
                    !cell.contains('|'),
                    "{title}: `|` in a cell of {}",
                    row.name
                );
            }
        }
        for (name, command, requirement) in &examples {
            let row = family
                .commands
                .iter()
                .find(|r| r.name == *name)
                .unwrap_or_else(|| panic!("{title}: {name} has no row"));
            let bytes = command
                .to_bytes()
                .or_else(|_| command.to_extended())
                .unwrap();
            let view = CommandView::parse(&bytes).unwrap();
            assert_eq!(
                (view.cla(), view.ins()),
                (row.cla, row.ins),
                "{title}: {name} encodes {bytes:02X?}"
            );
            assert!(
                row.p1.admits(view.p1()) && row.p2.admits(view.p2()),
                "{title}: {name} encodes P1 P2 {:02X} {:02X}, the row says {} {}",
                view.p1(),
                view.p2(),
                row.p1,
                row.p2
            );
            if let Some(requirement) = requirement {
                assert_eq!(
                    *requirement, row.requirement,
                    "{title}: {name} requires otherwise than its row"
                );
            }
        }
    }
}

#[test]
fn rows_carry_the_enforced_requirements() {
    for family in FAMILIES.iter().filter(|f| !f.requirements.is_empty()) {
        let title = family.title;
        for row in family.commands {
            let listed = family.requirements.iter().find(|(n, _)| *n == row.name);
            assert_eq!(
                listed.map(|(_, r)| *r),
                Some(row.requirement),
                "{title}: {} and its REQUIREMENTS entry",
                row.name
            );
        }
        for (name, _) in family.requirements {
            assert!(
                family.commands.iter().any(|r| r.name == *name),
                "{title}: {name} has a requirement but no row"
            );
        }
    }
}

#[test]
fn docs_apdu_md_shows_every_table() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/apdu.md"))
        .expect("docs/apdu.md");
    let mut missing = String::new();
    for family in FAMILIES {
        let table = render(family.commands);
        if !doc.contains(&table) {
            missing.push_str(&format!("\n{} table:\n\n{table}", family.title));
        }
    }
    assert!(
        missing.is_empty(),
        "docs/apdu.md lacks these tables, or shows outdated ones; paste them in:\n{missing}"
    );
}
