//! The SCP11 handshake and the session it opens (GPC Amendment F §3.1.3 and §6.5; secure messaging as in SCP03,
//! Amendment D §6.2), for both sides.
//!
//! **Handshake.** The OCE sends MUTUAL AUTHENTICATE (SCP11a) or INTERNAL AUTHENTICATE (SCP11b) with a control
//! reference template and its ephemeral public key:
//! `A6 { 90 02 11 <i>, 95 01 <key usage>, 80 01 88, 81 01 10 } 5F49 41 <ePK.OCE>`. The card answers
//! `5F49 41 <ePK.SD> 86 10 <receipt>`. Both sides compute
//! * `ShSee = ECDH(eSK.OCE, ePK.SD)` and `ShSss = ECDH(SK.OCE, PK.SD)` (SCP11a; SCP11b uses eSK.OCE for both),
//! * X9.63 KDF with SHA-256 over `ShSee ‖ ShSss` and shared info `key usage ‖ 88 ‖ 10` into five AES-128 keys:
//!   receipt key, S-ENC, S-MAC, S-RMAC, DEK ([`derive`]),
//! * receipt = AES-CMAC(receipt key, command data ‖ `5F49 41 <ePK.SD>`) ([`receipt`]); it seeds MAC chaining.
//!
//! **Secure messaging** ([`SecureMessaging`]), S8 mode (8-byte MACs):
//! * C-DEC: the data field is padded (ISO 7816-4: `80 00…`) and AES-CBC encrypted under S-ENC with
//!   ICV = AES(S-ENC, counter as 16 bytes); the counter starts at 1 and counts every command, with data or not;
//! * C-MAC: AES-CMAC(S-MAC, chaining value ‖ CLA INS P1 P2 ‖ Lc ‖ data), Lc counting the MAC (one byte, or
//!   `00 hi lo` above 255); the full 16 bytes become the next chaining value, the first 8 are sent;
//! * R-ENC: response data encrypted likewise with ICV = AES(S-ENC, `80` ‖ counter as 15 bytes);
//! * R-MAC: AES-CMAC(S-RMAC, chaining value ‖ data ‖ SW1 SW2), first 8 bytes appended;
//! * error status words (anything but 9000, 62xx, 63xx) travel bare: no data, no R-MAC.
//!
//! A command is secured whole: a host wraps it and then splits it into a command chain; the card unwraps it
//! after reassembly. Every operation works in place on the caller's buffer (the card has no heap).

use aes::Aes128;
use aes::cipher::block_padding::Iso7816;
use aes::cipher::{BlockCipherEncrypt, BlockModeDecrypt, BlockModeEncrypt, KeyInit, KeyIvInit};
use cmac::{Cmac, Mac};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::Variant;
use crate::tlv;

/// Key type in the control reference template: AES.
pub const KEY_TYPE_AES: u8 = 0x88;
/// Session key length in bytes (AES-128).
pub const KEY_LENGTH: usize = 16;
/// Length of the MACs sent (S8 mode).
pub const MAC_LENGTH: usize = 8;
/// AES block size.
pub const BLOCK: usize = 16;
/// Most bytes secure messaging adds to a data field: padding (at most one block) and the MAC.
pub const OVERHEAD: usize = BLOCK + MAC_LENGTH;
/// An uncompressed P-256 public key: `04 ‖ X ‖ Y`.
pub const PUBLIC_KEY_LENGTH: usize = 65;
/// Tag of the ephemeral public keys in the handshake.
pub const TAG_EPHEMERAL_KEY: u16 = 0x5F49;
/// Tag of the receipt in the card's answer.
pub const TAG_RECEIPT: u16 = 0x86;
/// Tag of the control reference template.
pub const TAG_CONTROL_REFERENCE: u16 = 0xA6;
/// Length of the card's answer to the handshake: `5F49 41 <65> 86 10 <16>`.
pub const AUTHENTICATE_RESPONSE_LENGTH: usize = 3 + PUBLIC_KEY_LENGTH + 2 + BLOCK;

/// An uncompressed P-256 public key as it travels.
pub type PublicKeyBytes = [u8; PUBLIC_KEY_LENGTH];
/// An AES-128 key.
pub type Key = [u8; KEY_LENGTH];

/// Why a handshake or a secured message was refused. On the card every one of them closes the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScpError {
    /// The handshake data or a secured data field is not what the protocol prescribes.
    Malformed,
    /// The handshake asks for something this card does not do (key type, length, usage, variant).
    Unsupported,
    /// A public key is not a point on P-256.
    BadPublicKey,
    /// A MAC or the receipt did not verify.
    BadMac,
    /// Decrypted data is not correctly padded.
    BadPadding,
    /// The buffer cannot hold the result.
    BufferTooSmall,
    /// The encryption counter is exhausted: the session must end.
    CounterExhausted,
}

impl core::fmt::Display for ScpError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Malformed => "malformed secure-channel data",
            Self::Unsupported => "unsupported secure-channel parameters",
            Self::BadPublicKey => "public key is not a P-256 point",
            Self::BadMac => "MAC or receipt does not verify",
            Self::BadPadding => "bad padding in decrypted data",
            Self::BufferTooSmall => "buffer too small for secure messaging",
            Self::CounterExhausted => "encryption counter exhausted",
        })
    }
}

impl core::error::Error for ScpError {}

/// Which protections a session applies (GP security level bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SecurityLevel(u8);

impl SecurityLevel {
    /// Commands carry a C-MAC (always, in SCP11).
    pub const C_MAC: u8 = 0x01;
    /// Command data is encrypted.
    pub const C_DECRYPTION: u8 = 0x02;
    /// Responses carry an R-MAC.
    pub const R_MAC: u8 = 0x10;
    /// Response data is encrypted.
    pub const R_ENCRYPTION: u8 = 0x20;

    /// C-MAC only.
    pub const MAC: Self = Self(Self::C_MAC);
    /// C-MAC and C-DEC.
    pub const MAC_ENC: Self = Self(Self::C_MAC | Self::C_DECRYPTION);
    /// C-MAC and R-MAC.
    pub const MAC_RMAC: Self = Self(Self::C_MAC | Self::R_MAC);
    /// Everything: C-MAC, C-DEC, R-MAC, R-ENC (key usage `3C`, what SCP11 sessions normally use).
    pub const FULL: Self =
        Self(Self::C_MAC | Self::C_DECRYPTION | Self::R_MAC | Self::R_ENCRYPTION);
    /// Every level a session may have.
    pub const ALL: [Self; 4] = [Self::MAC, Self::MAC_ENC, Self::MAC_RMAC, Self::FULL];

    /// The level a handshake's key usage qualifier asks for (`14`, `1C`, `34`, `3C`: 04 secure messaging,
    /// 10 command protection, 20 response protection, 08 encryption in the protected directions).
    pub const fn from_key_usage(usage: u8) -> Option<Self> {
        match usage {
            0x14 => Some(Self::MAC),
            0x1C => Some(Self::MAC_ENC),
            0x34 => Some(Self::MAC_RMAC),
            0x3C => Some(Self::FULL),
            _ => None,
        }
    }
    /// The key usage qualifier that asks for this level.
    pub const fn key_usage(self) -> u8 {
        let mut usage = 0x14;
        if self.0 & Self::C_DECRYPTION != 0 {
            usage |= 0x08;
        }
        if self.0 & Self::R_MAC != 0 {
            usage |= 0x20;
        }
        usage
    }
    /// The GP level byte.
    pub const fn bits(self) -> u8 {
        self.0
    }
    /// Whether every protection in `bits` is applied.
    pub const fn has(self, bits: u8) -> bool {
        self.0 & bits == bits
    }
}

/// The OCE's handshake command data, parsed (zero-copy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handshake<'a> {
    /// SCP11a, b or c (tag `90`).
    pub variant: Variant,
    /// The level asked for (tag `95`).
    pub level: SecurityLevel,
    /// ePK.OCE.
    pub ephemeral_key: &'a PublicKeyBytes,
    /// The whole command data field: it goes into the receipt.
    pub command_data: &'a [u8],
}

impl<'a> Handshake<'a> {
    /// Parses MUTUAL/INTERNAL AUTHENTICATE data: only AES-128 and the levels of [`SecurityLevel::ALL`].
    pub fn parse(data: &'a [u8]) -> Result<Self, ScpError> {
        let (crt, rest) = tlv::read(data).map_err(|_| ScpError::Malformed)?;
        let (key, rest) = tlv::read(rest).map_err(|_| ScpError::Malformed)?;
        if crt.tag != TAG_CONTROL_REFERENCE || key.tag != TAG_EPHEMERAL_KEY || !rest.is_empty() {
            return Err(ScpError::Malformed);
        }
        let mut variant = None;
        let mut level = None;
        let (mut key_type, mut key_length) = (None, None);
        for item in tlv::iter(crt.value) {
            let item = item.map_err(|_| ScpError::Malformed)?;
            match (item.tag, item.value) {
                (0x90, [0x11, i]) if variant.is_none() => {
                    variant = Some(Variant::from_parameter(*i).ok_or(ScpError::Unsupported)?);
                }
                (0x95, [usage]) if level.is_none() => {
                    level =
                        Some(SecurityLevel::from_key_usage(*usage).ok_or(ScpError::Unsupported)?);
                }
                (0x80, [t]) if key_type.is_none() => key_type = Some(*t),
                (0x81, [l]) if key_length.is_none() => key_length = Some(*l),
                // Host and card-group identifiers (84, 5F20, 42) would enter the KDF: not supported.
                _ => return Err(ScpError::Unsupported),
            }
        }
        let (Some(variant), Some(level), Some(key_type), Some(key_length)) =
            (variant, level, key_type, key_length)
        else {
            return Err(ScpError::Malformed);
        };
        if key_type != KEY_TYPE_AES || usize::from(key_length) != KEY_LENGTH {
            return Err(ScpError::Unsupported);
        }
        let ephemeral_key =
            <&PublicKeyBytes>::try_from(key.value).map_err(|_| ScpError::BadPublicKey)?;
        Ok(Self {
            variant,
            level,
            ephemeral_key,
            command_data: data,
        })
    }

    /// Writes the handshake command data for `variant` and `level` with ePK.OCE into `out`; returns its length.
    pub fn encode(
        variant: Variant,
        level: SecurityLevel,
        ephemeral_key: &PublicKeyBytes,
        out: &mut [u8],
    ) -> Result<usize, ScpError> {
        let mut crt = [0u8; 13];
        let mut inner = tlv::Writer::new(&mut crt);
        let written = inner
            .tlv(0x90, &[0x11, variant.parameter()])
            .and_then(|()| inner.tlv(0x95, &[level.key_usage()]))
            .and_then(|()| inner.tlv(0x80, &[KEY_TYPE_AES]))
            .and_then(|()| inner.tlv(0x81, &[KEY_LENGTH as u8]));
        written.map_err(|_| ScpError::BufferTooSmall)?;
        let crt_len = inner.len();
        let mut writer = tlv::Writer::new(out);
        writer
            .tlv(
                TAG_CONTROL_REFERENCE,
                crt.get(..crt_len).unwrap_or_default(),
            )
            .and_then(|()| writer.tlv(TAG_EPHEMERAL_KEY, ephemeral_key))
            .map_err(|_| ScpError::BufferTooSmall)?;
        Ok(writer.len())
    }
}

/// The five keys the KDF yields. Zeroized when dropped.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SessionKeys {
    /// Computes the receipt only.
    pub receipt: Key,
    /// S-ENC: command and response encryption.
    pub enc: Key,
    /// S-MAC: command MACs.
    pub mac: Key,
    /// S-RMAC: response MACs.
    pub rmac: Key,
    /// DEK: encryption of sensitive data (keys) inside secured commands.
    pub dek: Key,
}

impl core::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SessionKeys(..)")
    }
}

/// A public key as it travels: uncompressed, `04 ‖ X ‖ Y`.
pub fn encode_public_key(key: &p256::PublicKey) -> PublicKeyBytes {
    use p256::elliptic_curve::sec1::ToSec1Point;
    let point = key.to_sec1_point(false);
    let mut out = [0u8; PUBLIC_KEY_LENGTH];
    if let Some(bytes) = point.as_bytes().get(..PUBLIC_KEY_LENGTH) {
        out.copy_from_slice(bytes);
    }
    out
}

/// The public key of `secret`, as it travels ([`crate::curve`]).
pub fn public_key_of(secret: &p256::NonZeroScalar) -> PublicKeyBytes {
    crate::curve::public_key_of(secret)
}

/// ECDH on P-256: the x-coordinate of `secret · public` (`public` is checked to be on the curve).
pub fn ecdh(secret: &p256::NonZeroScalar, public: &PublicKeyBytes) -> Result<[u8; 32], ScpError> {
    crate::curve::ecdh(secret, public).map_err(|_| ScpError::BadPublicKey)
}

/// The X9.63 KDF (SHA-256) over `ShSee ‖ ShSss` with shared info `key usage ‖ 88 ‖ 10`.
pub fn derive(shared_ee: &[u8; 32], shared_ss: &[u8; 32], level: SecurityLevel) -> SessionKeys {
    let mut secret = [0u8; 64];
    secret[..32].copy_from_slice(shared_ee);
    secret[32..].copy_from_slice(shared_ss);
    let shared_info = [level.key_usage(), KEY_TYPE_AES, KEY_LENGTH as u8];
    let mut material = [0u8; 5 * KEY_LENGTH];
    // Cannot fail: the secret and the output are non-empty and far below the KDF's limits.
    let derived =
        ansi_x963_kdf::derive_key_into::<sha2::Sha256>(&secret, &shared_info, &mut material);
    debug_assert!(derived.is_ok());
    secret.zeroize();
    let mut keys = SessionKeys {
        receipt: [0; KEY_LENGTH],
        enc: [0; KEY_LENGTH],
        mac: [0; KEY_LENGTH],
        rmac: [0; KEY_LENGTH],
        dek: [0; KEY_LENGTH],
    };
    for (key, chunk) in [
        &mut keys.receipt,
        &mut keys.enc,
        &mut keys.mac,
        &mut keys.rmac,
        &mut keys.dek,
    ]
    .into_iter()
    .zip(material.chunks_exact(KEY_LENGTH))
    {
        key.copy_from_slice(chunk);
    }
    material.zeroize();
    keys
}

fn cmac(key: &Key) -> Cmac<Aes128> {
    // A 16-byte key always fits AES-128.
    <Cmac<Aes128> as KeyInit>::new(key.into())
}

/// The receipt: AES-CMAC(receipt key, handshake command data ‖ `5F49 41 <ePK.SD>`).
pub fn receipt(keys: &SessionKeys, command_data: &[u8], card_key: &PublicKeyBytes) -> [u8; BLOCK] {
    let mut mac = cmac(&keys.receipt);
    mac.update(command_data);
    mac.update(&[0x5F, 0x49, PUBLIC_KEY_LENGTH as u8]);
    mac.update(card_key);
    mac.finalize().into_bytes().into()
}

/// Writes the card's answer `5F49 41 <ePK.SD> 86 10 <receipt>`; returns its length.
pub fn encode_authenticate_response(
    card_key: &PublicKeyBytes,
    receipt: &[u8; BLOCK],
    out: &mut [u8],
) -> Result<usize, ScpError> {
    let mut writer = tlv::Writer::new(out);
    writer
        .tlv(TAG_EPHEMERAL_KEY, card_key)
        .and_then(|()| writer.tlv(TAG_RECEIPT, receipt))
        .map_err(|_| ScpError::BufferTooSmall)?;
    Ok(writer.len())
}

/// Reads the card's answer: (ePK.SD, receipt).
pub fn parse_authenticate_response(
    data: &[u8],
) -> Result<(&PublicKeyBytes, &[u8; BLOCK]), ScpError> {
    let (key, rest) = tlv::read(data).map_err(|_| ScpError::Malformed)?;
    let (receipt, rest) = tlv::read(rest).map_err(|_| ScpError::Malformed)?;
    if key.tag != TAG_EPHEMERAL_KEY || receipt.tag != TAG_RECEIPT || !rest.is_empty() {
        return Err(ScpError::Malformed);
    }
    let key = <&PublicKeyBytes>::try_from(key.value).map_err(|_| ScpError::BadPublicKey)?;
    let receipt = <&[u8; BLOCK]>::try_from(receipt.value).map_err(|_| ScpError::Malformed)?;
    Ok((key, receipt))
}

/// Whether a response with this status word is protected (carries data and an R-MAC).
pub const fn protected_status(sw: u16) -> bool {
    sw == 0x9000 || matches!(sw >> 8, 0x62 | 0x63)
}

/// An open session's secure messaging state, for either side. Zeroized when dropped.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecureMessaging {
    enc: Key,
    mac: Key,
    rmac: Key,
    chaining: [u8; BLOCK],
    /// The encryption counter of the next command.
    counter: u32,
    #[zeroize(skip)]
    level: SecurityLevel,
}

impl core::fmt::Debug for SecureMessaging {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SecureMessaging")
            .field("level", &self.level)
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

/// Where the command's C-MAC input ends: header ‖ Lc, with Lc one byte or `00 hi lo`.
fn header_with_lc(header: [u8; 4], lc: usize) -> Result<([u8; 7], usize), ScpError> {
    let [cla, ins, p1, p2] = header;
    if let Ok(short) = u8::try_from(lc) {
        return Ok(([cla, ins, p1, p2, short, 0, 0], 5));
    }
    match u16::try_from(lc) {
        Ok(long) => {
            let [hi, lo] = long.to_be_bytes();
            Ok(([cla, ins, p1, p2, 0, hi, lo], 7))
        }
        Err(_) => Err(ScpError::BufferTooSmall),
    }
}

impl SecureMessaging {
    /// The session that `keys` and the verified `receipt` open at `level`.
    pub fn new(keys: &SessionKeys, receipt: &[u8; BLOCK], level: SecurityLevel) -> Self {
        Self {
            enc: keys.enc,
            mac: keys.mac,
            rmac: keys.rmac,
            chaining: *receipt,
            counter: 1,
            level,
        }
    }

    /// The level this session applies.
    pub const fn level(&self) -> SecurityLevel {
        self.level
    }

    /// The current MAC chaining value (the last command's full C-MAC).
    pub const fn chaining_value(&self) -> [u8; BLOCK] {
        self.chaining
    }

    fn icv(&self, response: bool, counter: u32) -> [u8; BLOCK] {
        let mut block = [0u8; BLOCK];
        block[12..].copy_from_slice(&counter.to_be_bytes());
        if response {
            block[0] = 0x80;
        }
        let cipher = <Aes128 as KeyInit>::new((&self.enc).into());
        let mut block = block.into();
        cipher.encrypt_block(&mut block);
        block.into()
    }

    fn command_mac(&self, header: [u8; 4], data: &[u8]) -> Result<[u8; BLOCK], ScpError> {
        let (prefix, prefix_len) = header_with_lc(header, data.len() + MAC_LENGTH)?;
        let mut mac = cmac(&self.mac);
        mac.update(&self.chaining);
        mac.update(prefix.get(..prefix_len).unwrap_or_default());
        mac.update(data);
        Ok(mac.finalize().into_bytes().into())
    }

    fn response_mac(&self, data: &[u8], sw: u16) -> [u8; BLOCK] {
        let mut mac = cmac(&self.rmac);
        mac.update(&self.chaining);
        mac.update(data);
        mac.update(&sw.to_be_bytes());
        mac.finalize().into_bytes().into()
    }

    fn take_counter(&mut self) -> Result<u32, ScpError> {
        let counter = self.counter;
        self.counter = counter.checked_add(1).ok_or(ScpError::CounterExhausted)?;
        Ok(counter)
    }

    /// The counter the response to the last command uses.
    fn response_counter(&self) -> u32 {
        self.counter.wrapping_sub(1)
    }

    /// Pads `buf[..len]` and encrypts it in place under S-ENC with the ICV of `counter`; returns the new length.
    fn encrypt(
        &self,
        response: bool,
        counter: u32,
        buf: &mut [u8],
        len: usize,
    ) -> Result<usize, ScpError> {
        let icv = self.icv(response, counter);
        let encryptor = cbc::Encryptor::<Aes128>::new((&self.enc).into(), (&icv).into());
        encryptor
            .encrypt_padded::<Iso7816>(buf, len)
            .map(<[u8]>::len)
            .map_err(|_| ScpError::BufferTooSmall)
    }

    /// Decrypts `buf[..len]` in place and removes the padding; returns the plain length.
    fn decrypt(
        &self,
        response: bool,
        counter: u32,
        buf: &mut [u8],
        len: usize,
    ) -> Result<usize, ScpError> {
        if !len.is_multiple_of(BLOCK) {
            return Err(ScpError::Malformed);
        }
        let icv = self.icv(response, counter);
        let decryptor = cbc::Decryptor::<Aes128>::new((&self.enc).into(), (&icv).into());
        let data = buf.get_mut(..len).ok_or(ScpError::Malformed)?;
        decryptor
            .decrypt_padded::<Iso7816>(data)
            .map(<[u8]>::len)
            .map_err(|_| ScpError::BadPadding)
    }

    /// Host side: secures a command in place. `header` is the CLA (with the secure-messaging bit set, no
    /// chaining bit), INS, P1, P2 as they will be sent; `buf[..data_len]` holds the plain data field. Writes
    /// the secured data field (encrypted when C-DEC, then the C-MAC) into `buf` and returns its length.
    pub fn wrap_command(
        &mut self,
        header: [u8; 4],
        buf: &mut [u8],
        data_len: usize,
    ) -> Result<usize, ScpError> {
        let counter = self.take_counter()?;
        let len = if self.level.has(SecurityLevel::C_DECRYPTION) && data_len > 0 {
            self.encrypt(false, counter, buf, data_len)?
        } else {
            data_len
        };
        self.chaining =
            self.command_mac(header, buf.get(..len).ok_or(ScpError::BufferTooSmall)?)?;
        append_mac(buf, len, &self.chaining)
    }

    /// Card side: checks and opens a secured command in place. `header` is the command's CLA INS P1 P2 as
    /// received (chaining bit cleared), `buf` its whole data field. Returns the length of the plain data now at
    /// the start of `buf`. Any error means the session must be closed.
    pub fn unwrap_command(&mut self, header: [u8; 4], buf: &mut [u8]) -> Result<usize, ScpError> {
        let counter = self.take_counter()?;
        let len = buf
            .len()
            .checked_sub(MAC_LENGTH)
            .ok_or(ScpError::Malformed)?;
        let (data, received) = buf.split_at(len);
        let expected = self.command_mac(header, data)?;
        check_mac(&expected, received)?;
        self.chaining = expected;
        if self.level.has(SecurityLevel::C_DECRYPTION) && len > 0 {
            self.decrypt(false, counter, buf, len)
        } else {
            Ok(len)
        }
    }

    /// Card side: protects the response to the last unwrapped command in place. `buf[..data_len]` holds the
    /// plain response data; `buf` needs [`OVERHEAD`] spare bytes. Returns the length of the response data field
    /// to send (encrypted data and R-MAC); 0 for an error status word, which travels bare.
    pub fn wrap_response(
        &mut self,
        buf: &mut [u8],
        data_len: usize,
        sw: u16,
    ) -> Result<usize, ScpError> {
        if !protected_status(sw) {
            return Ok(0);
        }
        let len = if self.level.has(SecurityLevel::R_ENCRYPTION) && data_len > 0 {
            self.encrypt(true, self.response_counter(), buf, data_len)?
        } else {
            data_len
        };
        if !self.level.has(SecurityLevel::R_MAC) {
            return Ok(len);
        }
        let mac = self.response_mac(buf.get(..len).ok_or(ScpError::BufferTooSmall)?, sw);
        append_mac(buf, len, &mac)
    }

    /// Host side: checks and opens the response to the last wrapped command in place; `buf` is its data field.
    /// Returns the length of the plain data now at the start of `buf`.
    pub fn unwrap_response(&mut self, buf: &mut [u8], sw: u16) -> Result<usize, ScpError> {
        if !protected_status(sw) {
            return if buf.is_empty() {
                Ok(0)
            } else {
                Err(ScpError::Malformed)
            };
        }
        let mut len = buf.len();
        if self.level.has(SecurityLevel::R_MAC) {
            len = len.checked_sub(MAC_LENGTH).ok_or(ScpError::Malformed)?;
            let (data, received) = buf.split_at(len);
            check_mac(&self.response_mac(data, sw), received)?;
        }
        if self.level.has(SecurityLevel::R_ENCRYPTION) && len > 0 {
            self.decrypt(true, self.response_counter(), buf, len)
        } else {
            Ok(len)
        }
    }
}

/// Compares a received (truncated) MAC with the expected one in constant time.
fn check_mac(expected: &[u8; BLOCK], received: &[u8]) -> Result<(), ScpError> {
    let sent = expected.get(..MAC_LENGTH).unwrap_or_default();
    if bool::from(sent.ct_eq(received)) {
        Ok(())
    } else {
        Err(ScpError::BadMac)
    }
}

/// Writes the first [`MAC_LENGTH`] bytes of `mac` after `buf[..len]`; returns the new length.
fn append_mac(buf: &mut [u8], len: usize, mac: &[u8; BLOCK]) -> Result<usize, ScpError> {
    let end = len
        .checked_add(MAC_LENGTH)
        .ok_or(ScpError::BufferTooSmall)?;
    buf.get_mut(len..end)
        .ok_or(ScpError::BufferTooSmall)?
        .copy_from_slice(mac.get(..MAC_LENGTH).unwrap_or_default());
    Ok(end)
}
