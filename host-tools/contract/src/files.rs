//! Small file helpers: public keys as SPKI PEM, identity fingerprints, files created only when new.

use std::path::Path;

use card_client::keyfile::{self, KeyFileError};
use p256::pkcs8::{EncodePublicKey, LineEnding};
use sha2::{Digest, Sha256};

/// DER prefix of a P-256 SubjectPublicKeyInfo (id-ecPublicKey, prime256v1, BIT STRING of 66 bytes): followed by
/// the 65-byte uncompressed point it is the whole SPKI, the bytes `openssl pkey -pubin -outform DER` writes.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01, 0x06, 0x08, 0x2A,
    0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// An identity key's fingerprint: SHA-256 over its DER SubjectPublicKeyInfo, so
/// `openssl pkey -pubin -in identity.pub -outform DER | sha256sum` prints the same 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of `key`.
    pub fn of(key: &p256::PublicKey) -> Self {
        let point = apdu_spec::scp11::session::encode_public_key(key);
        let digest = Sha256::new()
            .chain_update(P256_SPKI_PREFIX)
            .chain_update(point)
            .finalize();
        Self(digest.into())
    }

    /// 64 lowercase hex digits, as in the bundles and as `sha256sum` prints it.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint({})", self.to_hex())
    }
}

/// Reads the identity public key another organisation handed over out of band (SPKI PEM, or a private key file).
/// Show its [`Fingerprint::of`] to a human, to compare with what the other side reads out.
pub fn read_identity(path: &Path) -> Result<p256::PublicKey, KeyFileError> {
    keyfile::read_public(path)
}

/// Writes `key` as SPKI PEM (`BEGIN PUBLIC KEY`), never over an existing file.
pub(crate) fn write_public(path: &Path, key: &p256::PublicKey) -> Result<(), KeyFileError> {
    let pem = key
        .to_public_key_pem(LineEnding::LF)
        .map_err(|error| KeyFileError::Encode(error.into()))?;
    keyfile::write_new(path, pem.as_bytes(), 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_covers_the_der_spki() {
        let secret = p256::SecretKey::from_slice(&[7; 32]).unwrap();
        let public = secret.public_key();
        let der = public.to_public_key_der().unwrap();
        let expected: [u8; 32] = Sha256::digest(der.as_bytes()).into();
        assert_eq!(Fingerprint::of(&public), Fingerprint(expected));
        assert_eq!(Fingerprint::of(&public).to_string().len(), 64);
    }
}
