//! The off-card entity (OCE) side of GlobalPlatform SCP11 over any [`CardChannel`]: read and verify the card's
//! certificate, upload the OCE's chain, run the handshake, check the receipt, then wrap every command and open
//! every response. [`Scp11Session`] is itself a [`CardChannel`], so everything that speaks APDUs (the
//! conformance runner, the terminals) can run inside a secure channel unchanged.
//!
//! The byte formats and the cryptography are [`apdu_spec::scp11`]'s, shared with the card.

use std::path::{Path, PathBuf};

use apdu_spec::builder::{Command, EncodeError};
use apdu_spec::class::InvalidClass;
use apdu_spec::scp11::cert::{self, CertError, Certificate, Date, Issuer};
use apdu_spec::scp11::session::{
    self, Handshake, PublicKeyBytes, ScpError, SecureMessaging, SecurityLevel,
};
use apdu_spec::scp11::{self as scp, HandshakeCommand, KeyReference, Security, Variant};
use apdu_spec::{Class, CommandView, MalformedCommand, StatusWord};
use chacha20::rand_core::SeedableRng;
use p256::elliptic_curve::Generate;

use crate::card_manager::{CardManagerError, CardManagerSession};
use crate::channel::{CardChannel, ChannelError, send_apdus, split_response};
use crate::entropy::{self, EntropyError};
use crate::keyfile::{self, KeyFileError};

/// Key version number the OCE asks for (P1 of the handshake commands).
pub const KVN: u8 = 0x03;

/// Why a secure channel could not be opened or a secured exchange failed. Causes are sources, not part of the
/// message: print the chain (`linkcard` does) to see them.
#[derive(Debug, thiserror::Error)]
pub enum Scp11Error {
    /// The channel failed underneath.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// The card refused a step.
    #[error("{step}: card answered {status}")]
    Refused {
        /// Which step.
        step: &'static str,
        /// What it answered.
        status: StatusWord,
    },
    /// A certificate (the card's, or one being built) is not acceptable (the reason is the source).
    #[error("certificate not acceptable")]
    Certificate(#[from] CertError),
    /// The handshake or secure messaging failed (bad receipt, bad R-MAC...; the reason is the source).
    #[error("secure channel failed")]
    Protocol(#[from] ScpError),
    /// A command (one of the OCE's own, or a secured one) cannot be encoded as APDUs.
    #[error("cannot encode the command")]
    Encode(#[from] EncodeError),
    /// The command APDU to secure is not one the session can secure.
    #[error("cannot secure this command")]
    BadCommand(#[from] BadCommand),
    /// The session was closed (a failed exchange, a reset); open a new one.
    #[error("the secure channel is closed")]
    Closed,
    /// No randomness for a key, a certificate serial or a handshake (the reason is the source).
    #[error("no random numbers")]
    Entropy(#[from] EntropyError),
}

/// Why [`Scp11Session::wrap`] cannot secure a command APDU.
#[derive(Debug, thiserror::Error)]
pub enum BadCommand {
    /// Its length fields do not match its size.
    #[error(transparent)]
    Malformed(#[from] MalformedCommand),
    /// Its CLA byte has no valid decoding.
    #[error(transparent)]
    Class(#[from] InvalidClass),
    /// It is a piece of a chain, or already secured.
    #[error("send the whole command, unsecured: the session chains and secures it")]
    ChainedOrSecured,
    /// Its logical channel has no CLA with secure messaging.
    #[error("no secured CLA for this channel")]
    NoSecuredClass,
}

/// What the OCE proves itself with in SCP11a: its static key agreement key and the certificates that certify
/// it, from the one the card's trust anchor signed to the leaf.
#[derive(Clone)]
pub struct OceCredentials {
    /// SK.OCE.ECKA.
    pub static_key: p256::NonZeroScalar,
    /// GP certificates (`7F21`), leaf last; the leaf certifies `static_key`'s public key.
    pub chain: Vec<Vec<u8>>,
}

impl std::fmt::Debug for OceCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OceCredentials")
            .field("chain", &self.chain.len())
            .finish_non_exhaustive()
    }
}

pub use apdu_spec::scp11::session::public_key_of;

/// A fresh random scalar from the operating system's generator.
pub fn random_scalar() -> Result<p256::NonZeroScalar, EntropyError> {
    let mut rng = chacha20::ChaCha20Rng::from_seed(entropy::os_seed()?);
    Ok(<p256::NonZeroScalar as Generate>::generate_from_rng(
        &mut rng,
    ))
}

/// One plain step of the handshake or personalization: the response data, or the card's refusal.
fn exchange<C: CardChannel>(
    channel: &mut C,
    step: &'static str,
    command: &Command,
) -> Result<Vec<u8>, Scp11Error> {
    let fragments = command.to_chain(255)?;
    let answer = send_apdus(channel, &fragments)?;
    let (data, status) = split_response(&answer)?;
    if !status.is_success() {
        return Err(Scp11Error::Refused { step, status });
    }
    Ok(data.to_vec())
}

/// Reads the card's certificate store (GET DATA BF21) and verifies it from `anchor` (the CA that certifies
/// cards) as of `today`; returns the leaf's public key, PK.SD.ECKA.
pub fn card_key<C: CardChannel>(
    channel: &mut C,
    anchor: &Issuer<'_>,
    today: Date,
) -> Result<PublicKeyBytes, Scp11Error> {
    let store = exchange(
        channel,
        "GET DATA BF21",
        &HandshakeCommand::GetCertificates { key: None }.to_command(),
    )?;
    let (tlv, rest) = apdu_spec::tlv::read(&store).map_err(|_| CertError::Malformed)?;
    if tlv.tag != scp::TAG_CERTIFICATE_STORE || !rest.is_empty() {
        return Err(CertError::Malformed.into());
    }
    let leaf = cert::verify_chain(anchor, tlv.value, today)?;
    Ok(*leaf.public_key_bytes())
}

/// An open SCP11 session over `C`: a [`CardChannel`] whose commands are secured.
pub struct Scp11Session<C> {
    channel: C,
    messaging: Option<SecureMessaging>,
    security: Security,
    /// The card answered 6982, which ends its side of the session: commands still go out secured (and the
    /// card refuses them), but the channel no longer claims the session's security.
    ended_by_card: bool,
}

impl<C> std::fmt::Debug for Scp11Session<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scp11Session")
            .field("security", &self.security)
            .field("open", &self.messaging.is_some())
            .finish_non_exhaustive()
    }
}

/// Runs the handshake command and derives the session. The second ECDH uses `static_key` (SK.OCE.ECKA, SCP11a)
/// or, without one (SCP11b), the ephemeral key again.
fn authenticate<C: CardChannel>(
    mut channel: C,
    variant: Variant,
    card_key: &PublicKeyBytes,
    static_key: Option<&p256::NonZeroScalar>,
    level: SecurityLevel,
    ephemeral: p256::NonZeroScalar,
) -> Result<Scp11Session<C>, Scp11Error> {
    let ephemeral_public = public_key_of(&ephemeral);
    let mut data = [0u8; 96];
    let len = Handshake::encode(variant, level, &ephemeral_public, &mut data)?;
    let data = &data[..len];
    let (command, step) = match variant {
        Variant::B => (
            HandshakeCommand::InternalAuthenticate {
                key: KeyReference {
                    kvn: KVN,
                    kid: scp::KID_SCP11B,
                },
                data,
            },
            "INTERNAL AUTHENTICATE",
        ),
        _ => (
            HandshakeCommand::MutualAuthenticate {
                key: KeyReference {
                    kvn: KVN,
                    kid: scp::KID_SCP11A,
                },
                data,
            },
            "MUTUAL AUTHENTICATE",
        ),
    };
    let answer = exchange(&mut channel, step, &command.to_command())?;
    let (card_ephemeral, card_receipt) = session::parse_authenticate_response(&answer)?;
    let shared_ee = session::ecdh(&ephemeral, card_ephemeral);
    let shared_ss = session::ecdh(static_key.unwrap_or(&ephemeral), card_key);
    let mut ephemeral = ephemeral;
    zeroize::Zeroize::zeroize(&mut ephemeral);
    let (mut shared_ee, mut shared_ss) = (shared_ee?, shared_ss?);
    let keys = session::derive(&shared_ee, &shared_ss, level);
    zeroize::Zeroize::zeroize(&mut shared_ee);
    zeroize::Zeroize::zeroize(&mut shared_ss);
    let receipt = session::receipt(&keys, data, card_ephemeral);
    // Constant time is not needed here (the host checks the card), but costs nothing.
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        &receipt[..],
        &card_receipt[..],
    )) {
        return Err(ScpError::BadMac.into());
    }
    Ok(Scp11Session {
        channel,
        messaging: Some(SecureMessaging::new(&keys, &receipt, level)),
        security: Security {
            variant,
            level,
            role: None,
        },
        ended_by_card: false,
    })
}

/// SCP11a: uploads the OCE's chain (PERFORM SECURITY OPERATION, one certificate per command) and runs MUTUAL
/// AUTHENTICATE with a fresh ephemeral key (or `ephemeral`, to reproduce published transcripts).
pub fn open_scp11a<C: CardChannel>(
    mut channel: C,
    card_key: &PublicKeyBytes,
    oce: &OceCredentials,
    level: SecurityLevel,
    ephemeral: Option<p256::NonZeroScalar>,
) -> Result<Scp11Session<C>, Scp11Error> {
    let last = oce
        .chain
        .len()
        .checked_sub(1)
        .ok_or(CertError::ChainLength)?;
    let mut role = None;
    for (i, certificate) in oce.chain.iter().enumerate() {
        // The leaf's role is what the card will stamp on the session's commands.
        role = Certificate::parse(certificate)?.0.role();
        // P2 b8 says another certificate follows, as yubikit and OpenSCP send it.
        let upload = HandshakeCommand::UploadCertificate {
            key: KeyReference {
                kvn: KVN,
                kid: scp::KID_OCE,
            },
            more: i != last,
            certificate,
        };
        exchange(
            &mut channel,
            "PERFORM SECURITY OPERATION",
            &upload.to_command(),
        )?;
    }
    let ephemeral = match ephemeral {
        Some(ephemeral) => ephemeral,
        None => random_scalar()?,
    };
    let mut session = authenticate(
        channel,
        Variant::A,
        card_key,
        Some(&oce.static_key),
        level,
        ephemeral,
    )?;
    session.security.role = role;
    Ok(session)
}

/// SCP11b: INTERNAL AUTHENTICATE; the card proves its key, the OCE stays anonymous.
pub fn open_scp11b<C: CardChannel>(
    channel: C,
    card_key: &PublicKeyBytes,
    level: SecurityLevel,
) -> Result<Scp11Session<C>, Scp11Error> {
    authenticate(channel, Variant::B, card_key, None, level, random_scalar()?)
}

impl<C: CardChannel> Scp11Session<C> {
    /// The level this session applies.
    pub fn level(&self) -> SecurityLevel {
        self.security.level
    }

    /// What the card stamps on the commands of this session: variant, level, and (SCP11a) the role of the OCE's
    /// leaf certificate.
    pub fn security(&self) -> Security {
        self.security
    }

    /// Whether the session is still open (a failed exchange, a reset or the card's 6982 closes it).
    pub fn is_open(&self) -> bool {
        self.messaging.is_some() && !self.ended_by_card
    }

    /// The channel underneath (for tests that send raw APDUs around the session).
    pub fn inner(&mut self) -> &mut C {
        &mut self.channel
    }

    /// Ends the session and hands the channel back.
    pub fn into_inner(self) -> C {
        self.channel
    }

    /// The caller's command, whatever it is, with its CLA secured and its data wrapped (a re-encoding of a
    /// typed command, not a new one), and the Ne it asked for.
    fn secure(&mut self, apdu: &[u8]) -> Result<(Command, Option<usize>), Scp11Error> {
        let messaging = self.messaging.as_mut().ok_or(Scp11Error::Closed)?;
        let view = CommandView::parse(apdu).map_err(BadCommand::from)?;
        let class = view.class().map_err(BadCommand::from)?;
        if class.chaining() || class.secure_messaging() {
            return Err(BadCommand::ChainedOrSecured.into());
        }
        let cla = Class::encode(class.channel(), class.proprietary(), false, true)
            .ok_or(BadCommand::NoSecuredClass)?;
        let header = [cla, view.ins(), view.p1(), view.p2()];
        let mut buf = view.data().to_vec();
        let plain_len = buf.len();
        buf.resize(plain_len + session::OVERHEAD, 0);
        let len = messaging.wrap_command(header, &mut buf, plain_len)?;
        buf.truncate(len);
        let command = Command::new(cla, view.ins(), view.p1(), view.p2()).with_data(buf);
        Ok((command, view.ne()))
    }

    /// Secures one command APDU: returns the APDUs to send (one, or a chain for long data).
    pub fn wrap(&mut self, apdu: &[u8]) -> Result<Vec<Vec<u8>>, Scp11Error> {
        let (mut command, ne) = self.secure(apdu)?;
        if let Some(ne) = ne {
            command = command.with_ne(ne.min(256));
        }
        Ok(command.to_chain(255)?)
    }

    /// Secures one command APDU as a single extended-length APDU (Le kept as asked), for an applet that
    /// declares extended length: a long answer (the credit applet's PRESENT) then comes in one exchange, with
    /// neither command chaining nor GET RESPONSE.
    pub fn wrap_extended(&mut self, apdu: &[u8]) -> Result<Vec<u8>, Scp11Error> {
        let (mut command, ne) = self.secure(apdu)?;
        if let Some(ne) = ne {
            command = command.with_ne(ne);
        }
        Ok(command.to_extended()?)
    }

    /// Checks and opens a response (data and SW1 SW2, GET RESPONSE already done); returns the plain response.
    pub fn unwrap(&mut self, response: &[u8]) -> Result<Vec<u8>, Scp11Error> {
        let messaging = self.messaging.as_mut().ok_or(Scp11Error::Closed)?;
        let (data, status) = split_response(response)?;
        let mut buf = data.to_vec();
        let n = messaging.unwrap_response(&mut buf, u16::from_be_bytes(status.to_bytes()))?;
        buf.truncate(n);
        buf.extend_from_slice(&status.to_bytes());
        // On 6982 the card has ended the session: the next command will say so.
        Ok(buf)
    }

    /// Sends one command inside the session and returns the plain response (data, SW1 SW2).
    pub fn transmit_secured(&mut self, apdu: &[u8]) -> Result<Vec<u8>, Scp11Error> {
        let fragments = self.wrap(apdu)?;
        self.exchange_wrapped(&fragments)
    }

    /// Sends wrapped APDUs and opens the answer; a failure closes the session, and so does the card's 6982 on
    /// the card's side.
    fn exchange_wrapped(&mut self, fragments: &[Vec<u8>]) -> Result<Vec<u8>, Scp11Error> {
        let response = send_apdus(&mut self.channel, fragments)?;
        let result = self.unwrap(&response);
        match &result {
            Err(_) => self.messaging = None,
            Ok(plain) if plain.ends_with(&[0x69, 0x82]) => self.ended_by_card = true,
            Ok(_) => {}
        }
        result
    }
}

impl<C: CardChannel> Scp11Session<C> {
    /// [`Self::transmit_secured`] as one extended-length APDU ([`Self::wrap_extended`]).
    pub fn transmit_secured_extended(&mut self, apdu: &[u8]) -> Result<Vec<u8>, Scp11Error> {
        let wrapped = self.wrap_extended(apdu)?;
        self.exchange_wrapped(&[wrapped])
    }
}

/// A session failure as the channel's: the transport's own error, or the secure channel's.
fn into_channel_error(error: Scp11Error) -> ChannelError {
    match error {
        Scp11Error::Channel(e) => e,
        other => ChannelError::SecureChannel(Box::new(other)),
    }
}

impl<C: CardChannel> CardChannel for Scp11Session<C> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ChannelError> {
        self.transmit_secured(apdu).map_err(into_channel_error)
    }
    fn transmit_extended(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ChannelError> {
        self.transmit_secured_extended(apdu)
            .map_err(into_channel_error)
    }
    fn reset(&mut self) -> Result<Vec<u8>, ChannelError> {
        self.messaging = None;
        self.channel.reset()
    }
    fn power_off(&mut self) -> Result<(), ChannelError> {
        self.messaging = None;
        self.channel.power_off()
    }
    fn power_on(&mut self) -> Result<Vec<u8>, ChannelError> {
        self.messaging = None;
        self.channel.power_on()
    }
    fn describe(&self) -> String {
        format!("SCP11 session over {}", self.channel.describe())
    }
    fn security(&self) -> Option<Security> {
        self.is_open().then_some(self.security)
    }
}

/// A certificate authority: a signing key and the identifier its certificates carry as CA-KLOC identifier.
#[derive(Clone)]
pub struct Authority {
    /// The CA's signing key.
    pub key: p256::ecdsa::SigningKey,
    /// Its identifier (1-20 bytes).
    pub id: Vec<u8>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("id", &crate::hex::spaced(&self.id))
            .finish_non_exhaustive()
    }
}

/// The identifier a key goes by in certificates when none is given: the first 20 bytes of SHA-256 over its
/// uncompressed encoding (in the manner of X.509's subject key identifier).
pub fn key_identifier(public: &PublicKeyBytes) -> Vec<u8> {
    use sha2::Digest as _;
    sha2::Sha256::digest(public)[..20].to_vec()
}

impl Authority {
    /// A new CA with a fresh key.
    pub fn generate(id: &[u8]) -> Result<Self, EntropyError> {
        Ok(Self {
            key: p256::ecdsa::SigningKey::from(random_scalar()?),
            id: id.to_vec(),
        })
    }

    /// The CA of an existing key, identified by its [`key_identifier`].
    pub fn from_key(key: &p256::SecretKey) -> Self {
        let key = p256::ecdsa::SigningKey::from(key);
        let mut authority = Self {
            key,
            id: Vec::new(),
        };
        authority.id = key_identifier(&authority.public_key());
        authority
    }

    /// The CA's public key, as a card keeps it for a trust anchor.
    pub fn public_key(&self) -> PublicKeyBytes {
        session::encode_public_key(&p256::PublicKey::from(self.key.verifying_key()))
    }

    /// The CA as a card keeps it: identifier and public key.
    pub fn anchor(&self) -> Anchor {
        Anchor {
            id: self.id.clone(),
            key: self.public_key(),
        }
    }

    /// The CA as the issuer certificates are verified against.
    pub fn issuer(&self) -> Issuer<'_> {
        Issuer::new(&self.id, *self.key.verifying_key())
    }

    /// Certifies `public_key` as a key agreement key (an OCE's or a card's) for `subject` with `role`, valid
    /// from `effective` to `expiration`.
    pub fn certify(
        &self,
        subject: &[u8],
        public_key: &PublicKeyBytes,
        role: Option<cert::Role>,
        effective: Date,
        expiration: Date,
    ) -> Result<Vec<u8>, Scp11Error> {
        let public_key =
            p256::PublicKey::from_sec1_bytes(public_key).map_err(|_| ScpError::BadPublicKey)?;
        let builder = cert::CertificateBuilder {
            // A random serial: unique without a register of issued certificates.
            serial: entropy::os_seed()?[..16].to_vec(),
            ca_kloc_id: self.id.clone(),
            subject_id: subject.to_vec(),
            key_usage: cert::KEY_AGREEMENT,
            effective: Some(effective),
            expiration,
            role,
            public_key,
        };
        Ok(builder.sign(&self.key)?)
    }

    /// Certifies `subordinate` as a CA whose certificates chain to this one (an intermediate certificate).
    pub fn certify_authority(
        &self,
        subordinate: &Authority,
        effective: Date,
        expiration: Date,
    ) -> Result<Vec<u8>, Scp11Error> {
        let builder = cert::CertificateBuilder {
            serial: entropy::os_seed()?[..16].to_vec(),
            ca_kloc_id: self.id.clone(),
            subject_id: subordinate.id.clone(),
            key_usage: cert::CERTIFICATE_SIGNING,
            effective: Some(effective),
            expiration,
            role: None,
            public_key: p256::PublicKey::from(subordinate.key.verifying_key()),
        };
        Ok(builder.sign(&self.key)?)
    }

    /// A new OCE key pair certified by this CA with `role`.
    pub fn issue_oce(
        &self,
        subject: &[u8],
        role: cert::Role,
        effective: Date,
        expiration: Date,
    ) -> Result<OceCredentials, Scp11Error> {
        let static_key = random_scalar()?;
        let certificate = self.certify(
            subject,
            &public_key_of(&static_key),
            Some(role),
            effective,
            expiration,
        )?;
        Ok(OceCredentials {
            static_key,
            chain: vec![certificate],
        })
    }
}

/// A trust anchor: a CA's identifier (the CA-KLOC identifier its certificates carry) and public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anchor {
    /// The identifier, 1-20 bytes.
    pub id: Vec<u8>,
    /// The public key.
    pub key: PublicKeyBytes,
}

impl Anchor {
    /// The anchor of a CA public key known only as a key: identified by its [`key_identifier`].
    pub fn from_public_key(key: &p256::PublicKey) -> Self {
        let key = session::encode_public_key(key);
        Self {
            id: key_identifier(&key),
            key,
        }
    }

    /// As an issuer to verify certificates against.
    pub fn issuer(&self) -> Result<Issuer<'_>, Scp11Error> {
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&self.key)
            .map_err(|_| ScpError::BadPublicKey)?;
        Ok(Issuer::new(&self.id, key))
    }
}

/// What card issuing writes into one security domain.
#[derive(Debug)]
pub struct Personalization<'a> {
    /// The instance to personalize (INSTALL [for personalization]); `None` for the card manager itself.
    pub instance: Option<&'a [u8]>,
    /// The CA that certifies the domain's key (hosts verify GET DATA BF21 against it).
    pub card_authority: &'a Authority,
    /// The domain's subject identifier in its certificate.
    pub subject: &'a [u8],
    /// CAs whose OCE certificates the domain accepts (its trust anchors).
    pub anchors: &'a [Anchor],
    /// Today: the card date, and the certificate's effective date.
    pub today: Date,
    /// When the domain's certificate expires.
    pub expiration: Date,
}

/// Personalizes a security domain through the card manager (STORE DATA): the card generates the key pair,
/// the card CA certifies the public key, and the certificate, trust anchors and card date are stored. Returns
/// PK.SD.ECKA. `channel` reaches the card manager (selected), plainly before issuance or through an issuer
/// session after. The same as [`CardManagerSession::personalize`], for a channel already at the card manager.
pub fn personalize<C: CardChannel>(
    channel: &mut C,
    personalization: &Personalization<'_>,
) -> Result<PublicKeyBytes, CardManagerError> {
    CardManagerSession::over_selected(channel).personalize(personalization)
}

/// The civil date `days` days after 1970-01-01 (proleptic Gregorian; H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The date `days_from_today` days after today (UTC), as certificates carry it.
pub fn date_from_today(days_from_today: i64) -> Date {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = i64::try_from(now / 86_400).unwrap_or(0) + days_from_today;
    let (year, month, day) = civil_from_days(days);
    u16::try_from(year)
        .ok()
        .and_then(|year| Date::from_ymd(year, month, day))
        .unwrap_or(Date([0x99, 0x99, 0x12, 0x31]))
}

/// An OCE's files: `PREFIX.key` (its private key, PKCS#8 PEM) and `PREFIX.cert` (its GP certificate, binary).
pub fn oce_paths(prefix: &Path) -> (PathBuf, PathBuf) {
    let with = |extension: &str| {
        let mut name = prefix.as_os_str().to_owned();
        name.push(extension);
        PathBuf::from(name)
    };
    (with(".key"), with(".cert"))
}

/// Why an OCE's files cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OceFileError {
    /// The private key file.
    #[error(transparent)]
    Key(#[from] KeyFileError),
    /// The certificate file cannot be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The certificate file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The certificate file holds no GP certificate.
    #[error("{}: not a GP certificate", path.display())]
    NotACertificate {
        /// The certificate file.
        path: PathBuf,
        /// Why it does not parse.
        source: CertError,
    },
    /// The certificate certifies another key (or has bytes after it).
    #[error("{} does not certify the key in {}", certificate.display(), key.display())]
    KeyMismatch {
        /// The certificate file.
        certificate: PathBuf,
        /// The key file.
        key: PathBuf,
    },
}

/// Loads an OCE from its files (see [`oce_paths`]), checking that the certificate certifies the key.
pub fn load_oce(prefix: &Path) -> Result<OceCredentials, OceFileError> {
    let (key_path, cert_path) = oce_paths(prefix);
    let secret = keyfile::read_secret(&key_path)?;
    let certificate = std::fs::read(&cert_path).map_err(|source| OceFileError::Read {
        path: cert_path.clone(),
        source,
    })?;
    let (parsed, rest) =
        Certificate::parse(&certificate).map_err(|source| OceFileError::NotACertificate {
            path: cert_path.clone(),
            source,
        })?;
    let static_key = secret.to_nonzero_scalar();
    if !rest.is_empty() || *parsed.public_key_bytes() != public_key_of(&static_key) {
        return Err(OceFileError::KeyMismatch {
            certificate: cert_path,
            key: key_path,
        });
    }
    Ok(OceCredentials {
        static_key,
        chain: vec![certificate],
    })
}

#[cfg(test)]
mod tests {
    use super::civil_from_days;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_781), (2026, 11, 24));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
}
