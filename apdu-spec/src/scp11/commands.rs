//! The SCP11 handshake commands (GP Amendment F §7.5), typed: the card parses them, hosts encode them.
//!
//! | command | APDU | data | answer |
//! |---|---|---|---|
//! | GET DATA, certificate store | `00 CA BF 21` | none, or `A6 { 83 02 <KID> <KVN> }` | `BF21 { 7F21 … }` |
//! | PERFORM SECURITY OPERATION | `80 2A <KVN> <KID, b8 set while more follow>` | one OCE certificate | — |
//! | MUTUAL AUTHENTICATE (SCP11a) | `80 82 <KVN> <KID 11>` | control reference template, ephemeral key | ephemeral key, receipt |
//! | INTERNAL AUTHENTICATE (SCP11b) | `80 88 <KVN> <KID 13>` | same | same |
//!
//! The OCE chain goes one certificate per PERFORM SECURITY OPERATION, from the one its trust anchor signed to
//! the leaf; P2 b8 says another follows, as Yubico's yubikit and .NET SDK and Samsung's OpenSCP send it
//! (`80 2A 01 90`, …, `80 2A 01 10`). The flag is taken with KID 10 only (`90`): other P2 values with b8 set are
//! ISO 7816-8 operations of the application. The last certificate may name KID 10-2F.

use crate::command::{CommandDoc, Param};
use crate::{CommandView, StatusWord, ins, tlv};

use super::Requirement;

use super::{INS_INTERNAL_AUTHENTICATE, INS_MUTUAL_AUTHENTICATE, INS_PERFORM_SECURITY_OPERATION};

/// GET DATA P1 P2 of the certificate store.
const CERTIFICATE_STORE: [u8; 2] = [0xBF, 0x21];
/// P2 b8 of PERFORM SECURITY OPERATION: more certificates follow.
const MORE: u8 = 0x80;
/// Key identifiers PERFORM SECURITY OPERATION may name for the last certificate (the OCE's CA key references,
/// GP Amendment F).
const OCE_KIDS: core::ops::RangeInclusive<u8> = 0x10..=0x2F;
/// The only key identifier taken with the more-follow flag (`80 2A <KVN> 90`): P2 values with b8 set are
/// otherwise ISO 7816-8 PSO operations (`9A`, `A2`, `A8`, `AE`, …) that belong to the application.
const OCE_KID_CHAINED: u8 = super::KID_OCE;

/// A key named by its version number and identifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyReference {
    /// Key version number (KVN).
    pub kvn: u8,
    /// Key identifier (KID).
    pub kid: u8,
}

/// A handshake command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeCommand<'a> {
    /// GET DATA BF21: the security domain's certificate chain, for `key` when named.
    GetCertificates {
        /// The key whose certificates are asked for (`A6 { 83 KID KVN }`).
        key: Option<KeyReference>,
    },
    /// PERFORM SECURITY OPERATION: one certificate of the OCE's chain.
    UploadCertificate {
        /// KVN (P1) and KID (P2 without b8) of the CA key the chain leads to.
        key: KeyReference,
        /// P2 b8: more certificates follow.
        more: bool,
        /// The certificate (`7F21 …`).
        certificate: &'a [u8],
    },
    /// MUTUAL AUTHENTICATE (SCP11a): the card's key (P1 KVN, P2 KID) and the handshake data.
    MutualAuthenticate {
        /// The card key used.
        key: KeyReference,
        /// Control reference template and OCE ephemeral key.
        data: &'a [u8],
    },
    /// INTERNAL AUTHENTICATE (SCP11b).
    InternalAuthenticate {
        /// The card key used.
        key: KeyReference,
        /// Control reference template and OCE ephemeral key.
        data: &'a [u8],
    },
}

impl<'a> HandshakeCommand<'a> {
    /// Parses a handshake command; `None` when the command is none (it goes to the selected application as
    /// usual). GET DATA is accepted under either CLA, the others only under a proprietary one.
    pub fn parse(command: &CommandView<'a>) -> Option<Result<Self, StatusWord>> {
        let key = KeyReference {
            kvn: command.p1(),
            kid: command.p2(),
        };
        let proprietary = command.cla() & 0x80 != 0;
        let data = command.data();
        match command.ins() {
            ins::GET_DATA if [command.p1(), command.p2()] == CERTIFICATE_STORE => {
                Some(parse_key_reference(data).map(|key| Self::GetCertificates { key }))
            }
            INS_PERFORM_SECURITY_OPERATION
                if proprietary
                    && (OCE_KIDS.contains(&command.p2())
                        || command.p2() == OCE_KID_CHAINED | MORE) =>
            {
                Some(Ok(Self::UploadCertificate {
                    key: KeyReference {
                        kvn: command.p1(),
                        kid: command.p2() & !MORE,
                    },
                    more: command.p2() & MORE != 0,
                    certificate: data,
                }))
            }
            INS_MUTUAL_AUTHENTICATE if proprietary => {
                Some(Ok(Self::MutualAuthenticate { key, data }))
            }
            INS_INTERNAL_AUTHENTICATE if proprietary => {
                Some(Ok(Self::InternalAuthenticate { key, data }))
            }
            _ => None,
        }
    }
}

/// `A6 { 83 <KID> <KVN> }`, or nothing.
fn parse_key_reference(data: &[u8]) -> Result<Option<KeyReference>, StatusWord> {
    if data.is_empty() {
        return Ok(None);
    }
    let reference = tlv::find(data, 0xA6)
        .ok()
        .flatten()
        .and_then(|crt| tlv::find(crt, 0x83).ok().flatten());
    match reference {
        Some(&[kid, kvn]) => Ok(Some(KeyReference { kvn, kid })),
        _ => Err(StatusWord::WRONG_DATA),
    }
}

/// The handshake commands, for `docs/apdu.md` (a test checks the rows against the encoders and the document).
/// They travel plain, to the selected security domain (the card manager or a personalized applet instance).
pub const COMMANDS: &[CommandDoc] = &[
    CommandDoc {
        name: "GET DATA (certificate store)",
        cla: 0x00,
        ins: ins::GET_DATA,
        p1: Param::Is(CERTIFICATE_STORE[0]),
        p2: Param::Is(CERTIFICATE_STORE[1]),
        data: "none, or `A6 { 83 02 <KID> <KVN> }`",
        response: "`BF21 { 7F21 … }`: the domain's certificates",
        status: &[
            (StatusWord::WRONG_DATA, "malformed key reference"),
            (StatusWord::REFERENCED_DATA_NOT_FOUND, "not the card's key"),
        ],
        requirement: Requirement::NONE,
    },
    CommandDoc {
        name: "PERFORM SECURITY OPERATION",
        cla: 0x80,
        ins: INS_PERFORM_SECURITY_OPERATION,
        p1: Param::Any("KVN"),
        p2: Param::Any("KID `10`-`2F`; `90` while more follow"),
        data: "one OCE certificate `7F21 …`, anchor's first, leaf last",
        response: "none",
        status: &[
            (
                StatusWord::SECURITY_STATUS_NOT_SATISFIED,
                "the certificate does not verify (the chain is forgotten)",
            ),
            (StatusWord::WRONG_DATA, "not one certificate"),
        ],
        requirement: Requirement::NONE,
    },
    CommandDoc {
        name: "MUTUAL AUTHENTICATE (SCP11a)",
        cla: 0x80,
        ins: INS_MUTUAL_AUTHENTICATE,
        p1: Param::Any("KVN"),
        p2: Param::Is(super::KID_SCP11A),
        data: "`A6 { 90 02 11 01, 95 01 <usage>, 80 01 88, 81 01 10 } 5F49 41 <ePK.OCE>`",
        response: "`5F49 41 <ePK.SD> 86 10 <receipt>`",
        status: &[
            (
                StatusWord::CONDITIONS_NOT_SATISFIED,
                "no verified OCE chain on this channel, or the card has no entropy",
            ),
            (
                StatusWord::REFERENCED_DATA_NOT_FOUND,
                "P2 not the card's key",
            ),
            (StatusWord::WRONG_DATA, "malformed data"),
        ],
        requirement: Requirement::NONE,
    },
    CommandDoc {
        name: "INTERNAL AUTHENTICATE (SCP11b)",
        cla: 0x80,
        ins: INS_INTERNAL_AUTHENTICATE,
        p1: Param::Any("KVN"),
        p2: Param::Is(super::KID_SCP11B),
        data: "`A6 { 90 02 11 00, … } 5F49 41 <ePK.OCE>`",
        response: "the same as MUTUAL AUTHENTICATE",
        status: &[
            (
                StatusWord::CONDITIONS_NOT_SATISFIED,
                "the card has no entropy",
            ),
            (
                StatusWord::REFERENCED_DATA_NOT_FOUND,
                "P2 not the card's key",
            ),
            (StatusWord::WRONG_DATA, "malformed data"),
        ],
        requirement: Requirement::NONE,
    },
];

#[cfg(feature = "alloc")]
mod encode {
    use alloc::vec::Vec;

    use super::*;
    use crate::builder::Command;

    impl HandshakeCommand<'_> {
        /// The command on the basic channel.
        pub fn to_command(&self) -> Command {
            match *self {
                Self::GetCertificates { key } => {
                    let data = key.map_or_else(Vec::new, |k| {
                        alloc::vec![0xA6, 0x04, 0x83, 0x02, k.kid, k.kvn]
                    });
                    Command::new(
                        0x00,
                        ins::GET_DATA,
                        CERTIFICATE_STORE[0],
                        CERTIFICATE_STORE[1],
                    )
                    .with_data(data)
                    .with_ne(256)
                }
                Self::UploadCertificate {
                    key,
                    more,
                    certificate,
                } => Command::new(
                    0x80,
                    INS_PERFORM_SECURITY_OPERATION,
                    key.kvn,
                    key.kid | if more { MORE } else { 0 },
                )
                .with_data(certificate),
                Self::MutualAuthenticate { key, data } => {
                    Command::new(0x80, INS_MUTUAL_AUTHENTICATE, key.kvn, key.kid)
                        .with_data(data)
                        .with_ne(256)
                }
                Self::InternalAuthenticate { key, data } => {
                    Command::new(0x80, INS_INTERNAL_AUTHENTICATE, key.kvn, key.kid)
                        .with_data(data)
                        .with_ne(256)
                }
            }
        }
    }
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Option<Result<HandshakeCommand<'_>, StatusWord>> {
        HandshakeCommand::parse(&CommandView::parse(bytes).unwrap())
    }

    #[test]
    fn chained_upload_as_published_hosts_send_it() {
        let first = parse(&[0x80, 0x2A, 0x01, 0x90, 0x01, 0x7F])
            .unwrap()
            .unwrap();
        assert_eq!(
            first,
            HandshakeCommand::UploadCertificate {
                key: KeyReference {
                    kvn: 0x01,
                    kid: 0x10
                },
                more: true,
                certificate: &[0x7F],
            }
        );
        let last = parse(&[0x80, 0x2A, 0x01, 0x10, 0x01, 0x7F])
            .unwrap()
            .unwrap();
        assert!(matches!(
            last,
            HandshakeCommand::UploadCertificate { more: false, .. }
        ));
        // Outside the OCE key identifiers, PSO is not a handshake command: ISO 7816-8 operations such as
        // COMPUTE DIGITAL SIGNATURE (P2 9A) or VERIFY CERTIFICATE (P2 AE) stay the application's.
        for p2 in [0x05, 0x9A, 0xA2, 0xA8, 0xAE, 0x91, 0xAF] {
            assert_eq!(
                parse(&[0x80, 0x2A, 0x9E, p2, 0x01, 0x00]),
                None,
                "P2 {p2:02X}"
            );
        }
        // Handshake INSs under an interindustry CLA are the application's.
        assert_eq!(parse(&[0x00, 0x82, 0x01, 0x11, 0x01, 0x00]), None);
    }

    #[test]
    fn key_reference_of_get_data() {
        assert_eq!(
            parse(&[
                0x80, 0xCA, 0xBF, 0x21, 0x06, 0xA6, 0x04, 0x83, 0x02, 0x13, 0x01
            ]),
            Some(Ok(HandshakeCommand::GetCertificates {
                key: Some(KeyReference {
                    kvn: 0x01,
                    kid: 0x13
                })
            }))
        );
        assert_eq!(
            parse(&[0x00, 0xCA, 0xBF, 0x21, 0x02, 0xA6, 0x00]),
            Some(Err(StatusWord::WRONG_DATA))
        );
    }

    #[test]
    fn encoders_round_trip() {
        let key = KeyReference {
            kvn: 0x03,
            kid: 0x11,
        };
        for command in [
            HandshakeCommand::GetCertificates { key: None },
            HandshakeCommand::GetCertificates { key: Some(key) },
            HandshakeCommand::UploadCertificate {
                key: KeyReference {
                    kvn: 0x01,
                    kid: 0x10,
                },
                more: true,
                certificate: &[0x7F, 0x21, 0x00],
            },
            HandshakeCommand::UploadCertificate {
                key: KeyReference {
                    kvn: 0x01,
                    kid: 0x2F,
                },
                more: false,
                certificate: &[0x7F, 0x21, 0x00],
            },
            HandshakeCommand::MutualAuthenticate { key, data: &[1, 2] },
            HandshakeCommand::InternalAuthenticate { key, data: &[3] },
        ] {
            let bytes = command.to_command().to_bytes().unwrap();
            assert_eq!(parse(&bytes), Some(Ok(command)), "{command:?}");
        }
    }
}
