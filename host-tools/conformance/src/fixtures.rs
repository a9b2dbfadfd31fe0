//! The test keys secured scripts use (`keys DIR`): a card CA, an OCE CA, and OCE credentials by name, in the files
//! `linkcard scp11` reads and writes. The workspace's set is `tests/fixtures/scp11` (its README says how it was
//! made); these are test keys, checked in so that scripts run the same everywhere, and good for nothing else.
//!
//! | file | what |
//! |---|---|
//! | `card-ca.key` | the CA that certifies the keys cards generate at personalization (PKCS#8 PEM, private) |
//! | `oce-ca.key` | the CA the card trusts for OCE certificates (its public half is the card's trust anchor) |
//! | `NAME.key`, `NAME.cert` | an OCE: its private key, and its GP certificates (binary `7F21`, concatenated, the one the OCE CA signed first and the leaf last) |

use std::path::{Path, PathBuf};

use apdu_spec::scp11::cert::{CertError, Certificate};
use card_client::keyfile::{self, KeyFileError};
use card_client::scp11::{Anchor, Authority, OceCredentials, public_key_of};

/// File of the card CA's private key in a keys directory.
pub const CARD_CA_FILE: &str = "card-ca.key";
/// File of the OCE CA's key (private or public) in a keys directory.
pub const OCE_CA_FILE: &str = "oce-ca.key";
/// Most certificates one OCE file may hold (the card takes chains of at most four).
pub const MAX_CHAIN: usize = 4;

/// Why test keys cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// A key file cannot be read or is not a P-256 key.
    #[error(transparent)]
    Key(#[from] KeyFileError),
    /// A certificate file cannot be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// A certificate file holds something other than GP certificates.
    #[error("{}: not a chain of GP certificates", path.display())]
    NotACertificate {
        /// The file.
        path: PathBuf,
        /// Why it does not parse.
        source: CertError,
    },
    /// A certificate file holds no certificate, or more than [`MAX_CHAIN`].
    #[error("{}: holds {count} certificates; an OCE has 1 to {MAX_CHAIN}", path.display())]
    ChainLength {
        /// The file.
        path: PathBuf,
        /// How many it holds.
        count: usize,
    },
    /// The leaf certificate certifies another key.
    #[error("{} does not certify the key in {}", certificate.display(), key.display())]
    KeyMismatch {
        /// The certificate file.
        certificate: PathBuf,
        /// The key file.
        key: PathBuf,
    },
}

/// The CAs of one keys directory.
#[derive(Debug)]
pub struct Keyring {
    /// The directory, as the script named it (relative to the script's own directory).
    pub dir: PathBuf,
    /// Certifies the keys cards generate; hosts verify GET DATA BF21 against it.
    pub card_ca: Authority,
    /// The CA whose OCE certificates personalized domains accept.
    pub oce_ca: Anchor,
}

impl PartialEq for Keyring {
    fn eq(&self, other: &Self) -> bool {
        self.dir == other.dir
            && self.oce_ca == other.oce_ca
            && self.card_ca.public_key() == other.card_ca.public_key()
    }
}

impl Eq for Keyring {}

impl Keyring {
    /// Reads the CAs of `dir`.
    pub fn load(dir: &Path) -> Result<Self, FixtureError> {
        let card_ca = Authority::from_key(&keyfile::read_secret(&dir.join(CARD_CA_FILE))?);
        let oce_ca = Anchor::from_public_key(&keyfile::read_public(&dir.join(OCE_CA_FILE))?);
        Ok(Self {
            dir: dir.to_owned(),
            card_ca,
            oce_ca,
        })
    }

    /// Reads the OCE `name` (`NAME.key` and `NAME.cert`), checking that its leaf certifies its key.
    pub fn oce(&self, name: &str) -> Result<Oce, FixtureError> {
        let key_path = self.dir.join(format!("{name}.key"));
        let cert_path = self.dir.join(format!("{name}.cert"));
        let static_key = keyfile::read_secret(&key_path)?.to_nonzero_scalar();
        let chain = read_chain(&cert_path)?;
        let leaf_key = chain
            .last()
            .and_then(|leaf| Certificate::parse(leaf).ok())
            .map(|(leaf, _)| *leaf.public_key_bytes());
        if leaf_key != Some(public_key_of(&static_key)) {
            return Err(FixtureError::KeyMismatch {
                certificate: cert_path,
                key: key_path,
            });
        }
        Ok(Oce {
            name: name.to_owned(),
            credentials: OceCredentials { static_key, chain },
        })
    }
}

/// The certificates of a file: one or more GP certificates, back to back.
pub fn read_chain(path: &Path) -> Result<Vec<Vec<u8>>, FixtureError> {
    let bytes = std::fs::read(path).map_err(|source| FixtureError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut chain = Vec::new();
    let mut rest = bytes.as_slice();
    while !rest.is_empty() && chain.len() <= MAX_CHAIN {
        let (_, after) =
            Certificate::parse(rest).map_err(|source| FixtureError::NotACertificate {
                path: path.to_owned(),
                source,
            })?;
        let (certificate, _) = rest.split_at(rest.len() - after.len());
        chain.push(certificate.to_vec());
        rest = after;
    }
    if chain.is_empty() || chain.len() > MAX_CHAIN {
        return Err(FixtureError::ChainLength {
            path: path.to_owned(),
            count: chain.len(),
        });
    }
    Ok(chain)
}

/// An off-card entity of a keys directory.
#[derive(Debug, Clone)]
pub struct Oce {
    /// Its name: the files' stem.
    pub name: String,
    /// Its key and certificates.
    pub credentials: OceCredentials,
}

impl PartialEq for Oce {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.credentials.chain == other.credentials.chain
    }
}

impl Eq for Oce {}
