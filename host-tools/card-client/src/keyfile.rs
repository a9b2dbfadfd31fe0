//! P-256 keys in files, in the formats OpenSSL reads and writes: private keys as PKCS#8 PEM (`BEGIN PRIVATE
//! KEY`, what `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256` writes; SEC1 `BEGIN EC PRIVATE
//! KEY` is read too), public keys as SPKI PEM (`BEGIN PUBLIC KEY`, `openssl pkey -pubout`).
//!
//! Errors name the file; the underlying reason is their [`std::error::Error::source`] (the `linkcard` command
//! prints the whole chain: `cannot read ca.key: No such file or directory`).

use std::path::{Path, PathBuf};

use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, LineEnding};

/// Why a key file cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file cannot be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// A `BEGIN PRIVATE KEY` block that is not a P-256 key.
    #[error("{}: not a P-256 PKCS#8 private key", path.display())]
    Pkcs8 {
        /// The file.
        path: PathBuf,
        /// Why it does not decode.
        source: p256::pkcs8::Error,
    },
    /// A `BEGIN EC PRIVATE KEY` block that is not a P-256 key.
    #[error("{}: not a P-256 SEC1 private key", path.display())]
    Sec1 {
        /// The file.
        path: PathBuf,
        /// Why it does not decode.
        source: p256::elliptic_curve::DecodeError,
    },
    /// A `BEGIN PUBLIC KEY` block that is not a P-256 key.
    #[error("{}: not a P-256 public key", path.display())]
    PublicKey {
        /// The file.
        path: PathBuf,
        /// Why it does not decode.
        source: p256::pkcs8::spki::Error,
    },
    /// No PEM key block at all.
    #[error("{}: no PEM private key (BEGIN PRIVATE KEY) in this file", path.display())]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// The key cannot be encoded as PKCS#8.
    #[error("cannot encode the key")]
    Encode(#[source] p256::pkcs8::Error),
    /// The file cannot be created (it exists, or the directory is not writable).
    #[error("cannot create {} (it must not exist yet)", path.display())]
    Create {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The file was created but cannot be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

fn read_text(path: &Path) -> Result<String, KeyFileError> {
    std::fs::read_to_string(path).map_err(|source| KeyFileError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Reads a private key (PKCS#8 or SEC1 PEM).
pub fn read_secret(path: &Path) -> Result<p256::SecretKey, KeyFileError> {
    let text = read_text(path)?;
    if text.contains("BEGIN PRIVATE KEY") {
        return p256::SecretKey::from_pkcs8_pem(&text).map_err(|source| KeyFileError::Pkcs8 {
            path: path.to_owned(),
            source,
        });
    }
    if text.contains("BEGIN EC PRIVATE KEY") {
        return p256::SecretKey::from_sec1_pem(&text).map_err(|source| KeyFileError::Sec1 {
            path: path.to_owned(),
            source,
        });
    }
    Err(KeyFileError::NoKey {
        path: path.to_owned(),
    })
}

/// Reads a public key: an SPKI PEM public key, or the public half of a private key file.
pub fn read_public(path: &Path) -> Result<p256::PublicKey, KeyFileError> {
    let text = read_text(path)?;
    if text.contains("BEGIN PUBLIC KEY") {
        return p256::PublicKey::from_public_key_pem(&text).map_err(|source| {
            KeyFileError::PublicKey {
                path: path.to_owned(),
                source,
            }
        });
    }
    read_secret(path).map(|secret| secret.public_key())
}

/// Writes a private key as PKCS#8 PEM, readable by its owner only; refuses to overwrite a file.
pub fn write_secret(path: &Path, key: &p256::SecretKey) -> Result<(), KeyFileError> {
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(KeyFileError::Encode)?;
    write_new(path, pem.as_bytes(), 0o600)
}

/// Creates `path` (never replacing an existing file: keys and certificates are not to be lost) with `mode`.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), KeyFileError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|source| KeyFileError::Create {
            path: path.to_owned(),
            source,
        })?;
    file.write_all(bytes).map_err(|source| KeyFileError::Write {
        path: path.to_owned(),
        source,
    })
}
