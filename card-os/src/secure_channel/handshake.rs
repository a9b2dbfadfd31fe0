//! The handshake a security domain answers: its certificate store, the OCE's chain, and the authentication
//! that opens a session.

use apdu_spec::scp11::cert::{self, Certificate, Role};
use apdu_spec::scp11::session::{self, Handshake, SecureMessaging, public_key_of};
use apdu_spec::scp11::{self as scp, HandshakeCommand, KeyReference, Security, Variant};
use apdu_spec::{StatusWord, tlv};
use heapless::Vec;
use p256::elliptic_curve::Generate;
use zeroize::Zeroize;

use super::domain::{self, MAX_CARD_CERTIFICATES, SecretScalar};
use super::sessions::Phase;
use super::{Outcome, Scope, SecureChannel};
use crate::applet::Reply;
use crate::layout::{CARD_MANAGER_SD, MAX_RECORD};
use crate::store::StoreAccess;

impl SecureChannel {
    /// Answers a handshake command for the security domain `owner` (one that holds a static key) on `channel`.
    /// Every step but GET DATA begins a new session, so whatever was bound to the old one ends.
    pub(crate) fn handshake(
        &mut self,
        store: &mut dyn StoreAccess,
        channel: u8,
        owner: u8,
        command: HandshakeCommand<'_>,
        reply: &mut Reply<'_>,
    ) -> Outcome<()> {
        let (result, scope) = match command {
            HandshakeCommand::GetCertificates { key } => {
                // A plain command ends an open session, this one too (a chain being uploaded may go on).
                let scope = if self.sessions.security(channel).is_some() {
                    self.close(channel)
                } else {
                    Scope::Kept
                };
                (certificate_store(store, owner, key, reply), scope)
            }
            HandshakeCommand::UploadCertificate {
                more, certificate, ..
            } => (
                self.upload_certificate(store, channel, owner, certificate, more),
                Scope::Ended,
            ),
            HandshakeCommand::MutualAuthenticate { key, data } => (
                self.authenticate(store, channel, owner, Variant::A, key, data, reply),
                Scope::Ended,
            ),
            HandshakeCommand::InternalAuthenticate { key, data } => (
                self.authenticate(store, channel, owner, Variant::B, key, data, reply),
                Scope::Ended,
            ),
        };
        if result.is_err() && scope == Scope::Ended {
            self.sessions.close(channel);
        }
        Outcome::new(result, scope)
    }

    fn upload_certificate(
        &mut self,
        store: &mut dyn StoreAccess,
        channel: u8,
        owner: u8,
        data: &[u8],
        more: bool,
    ) -> Result<(), StatusWord> {
        let (certificate, rest) = Certificate::parse(data).map_err(|_| StatusWord::WRONG_DATA)?;
        if !rest.is_empty() {
            return Err(StatusWord::WRONG_DATA);
        }
        // The chain continues when the previous upload said more would follow; otherwise this is its first.
        let (issuer_key, count, chain_effective) = match self.sessions.phase(channel) {
            Some(Phase::Chain {
                key,
                subject,
                leaf: false,
                count,
                effective,
                ..
            }) => {
                if subject.as_slice() != certificate.ca_kloc_id() {
                    return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
                }
                (*key, *count, *effective)
            }
            _ => {
                self.sessions.close(channel);
                let key = domain::find_anchor(store, owner, certificate.ca_kloc_id())
                    .ok_or(StatusWord::SECURITY_STATUS_NOT_SATISFIED)?;
                (key, 0, None)
            }
        };
        if count >= cert::MAX_CHAIN_LENGTH {
            return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
        }
        let issuer = p256::ecdsa::VerifyingKey::from_sec1_bytes(&issuer_key)
            .map_err(|_| StatusWord::SECURITY_STATUS_NOT_SATISFIED)?;
        self.count_scalar_multiplications(2);
        certificate
            .verify_signature(&issuer)
            .map_err(|_| StatusWord::SECURITY_STATUS_NOT_SATISFIED)?;
        check_validity(&certificate, domain::card_date(store), more)?;
        let effective = chain_effective.max(certificate.effective());
        let subject =
            Vec::from_slice(certificate.subject_id()).map_err(|_| StatusWord::WRONG_DATA)?;
        self.sessions.start(
            channel,
            Phase::Chain {
                key: *certificate.public_key_bytes(),
                subject,
                role: certificate.role(),
                leaf: !more,
                count: count + 1,
                effective,
            },
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn authenticate(
        &mut self,
        store: &mut dyn StoreAccess,
        channel: u8,
        owner: u8,
        variant: Variant,
        key: KeyReference,
        data: &[u8],
        reply: &mut Reply<'_>,
    ) -> Result<(), StatusWord> {
        // P2 names the card's key: SCP11a's or SCP11b's (one key pair serves both).
        let kid = match variant {
            Variant::B => scp::KID_SCP11B,
            _ => scp::KID_SCP11A,
        };
        if key.kid != kid {
            return Err(StatusWord::REFERENCED_DATA_NOT_FOUND);
        }
        let handshake = Handshake::parse(data).map_err(|_| StatusWord::WRONG_DATA)?;
        if handshake.variant != variant {
            return Err(StatusWord::WRONG_DATA);
        }
        // SCP11a needs the OCE's complete chain, uploaded on this channel.
        let (oce_key, role, effective) = match (variant, self.sessions.phase(channel)) {
            (Variant::B, _) => (*handshake.ephemeral_key, None, None),
            (
                _,
                Some(Phase::Chain {
                    key,
                    role,
                    leaf: true,
                    effective,
                    ..
                }),
            ) => (*key, *role, *effective),
            _ => return Err(StatusWord::CONDITIONS_NOT_SATISFIED),
        };
        self.sessions.close(channel);
        let (keys, receipt) = self.agree(store, owner, &handshake, &oce_key, reply)?;
        // Only the issuer moves the card date (a CA trusted by one applet must not be able to expire everyone
        // else's certificates), and only once it has proved its key: see `unwrap_command`.
        let pending_date = (owner == CARD_MANAGER_SD && role == Some(Role::Issuer))
            .then_some(effective)
            .flatten();
        self.sessions.start(
            channel,
            Phase::Open {
                messaging: SecureMessaging::new(&keys, &receipt, handshake.level),
                security: Security {
                    variant,
                    level: handshake.level,
                    role,
                },
                pending_date,
            },
        )
    }
}

impl SecureChannel {
    /// The card's half of the key agreement: a fresh ephemeral key, ECDH with the OCE's ephemeral and static
    /// keys, session keys and receipt; answers its ephemeral key and the receipt. Secrets are wiped on every path.
    fn agree(
        &mut self,
        store: &mut dyn StoreAccess,
        owner: u8,
        handshake: &Handshake<'_>,
        oce_key: &session::PublicKeyBytes,
        reply: &mut Reply<'_>,
    ) -> Result<(session::SessionKeys, [u8; session::BLOCK]), StatusWord> {
        let rng = self
            .rng
            .as_mut()
            .ok_or(StatusWord::CONDITIONS_NOT_SATISFIED)?;
        let ephemeral = SecretScalar(<p256::NonZeroScalar as Generate>::generate_from_rng(rng));
        let static_key =
            domain::static_key(store, owner).ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
        let ephemeral_public = public_key_of(&ephemeral);
        let shared_ee = session::ecdh(&ephemeral, handshake.ephemeral_key);
        let shared_ss = session::ecdh(&static_key, oce_key);
        // The private scalars are not needed past this point; neither are the shared secrets after the KDF.
        drop(ephemeral);
        drop(static_key);
        self.count_scalar_multiplications(3);
        let (Ok(mut shared_ee), Ok(mut shared_ss)) = (shared_ee, shared_ss) else {
            return Err(StatusWord::WRONG_DATA);
        };
        let keys = session::derive(&shared_ee, &shared_ss, handshake.level);
        shared_ee.zeroize();
        shared_ss.zeroize();
        let receipt = session::receipt(&keys, handshake.command_data, &ephemeral_public);
        let written =
            session::encode_authenticate_response(&ephemeral_public, &receipt, reply.spare())
                .map_err(|_| StatusWord::UNKNOWN)?;
        reply.advance(written)?;
        Ok((keys, receipt))
    }
}

/// The card has no clock: expiry is judged against the card date. An intermediate certificate (`more`) must
/// sign certificates, the leaf agree keys.
fn check_validity(
    certificate: &Certificate<'_>,
    today: cert::Date,
    more: bool,
) -> Result<(), StatusWord> {
    let expiration = certificate.expiration();
    let dates_valid = domain::valid_date(expiration)
        && certificate
            .effective()
            .is_none_or(|effective| domain::valid_date(effective) && effective <= expiration);
    let usage_fits = if more {
        certificate.is_certificate_signing()
    } else {
        certificate.is_key_agreement()
    };
    if dates_valid && expiration >= today && usage_fits {
        Ok(())
    } else {
        Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED)
    }
}

/// GET DATA BF21: the domain's chain. An OCE may name the key whose certificates it wants; this domain has one
/// key, answering as SCP11a's and SCP11b's.
fn certificate_store(
    store: &mut dyn StoreAccess,
    owner: u8,
    key: Option<KeyReference>,
    reply: &mut Reply<'_>,
) -> Result<(), StatusWord> {
    if key.is_some_and(|k| k.kid != scp::KID_SCP11A && k.kid != scp::KID_SCP11B) {
        return Err(StatusWord::REFERENCED_DATA_NOT_FOUND);
    }
    let mut certificates = [0u8; MAX_CARD_CERTIFICATES * MAX_RECORD];
    let len = domain::read_chain(store, owner, &mut certificates);
    if len == 0 {
        return Err(StatusWord::REFERENCED_DATA_NOT_FOUND);
    }
    let mut writer = tlv::Writer::new(reply.spare());
    writer
        .tlv(
            scp::TAG_CERTIFICATE_STORE,
            certificates.get(..len).unwrap_or_default(),
        )
        .map_err(|_| StatusWord::UNKNOWN)?;
    let written = writer.len();
    reply.advance(written)
}
