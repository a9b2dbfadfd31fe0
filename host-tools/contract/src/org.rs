//! An organisation's keys, each in its own PEM file under the organisation's directory (layout in [`paths`]),
//! created once and never overwritten.

use std::path::{Path, PathBuf};

use apdu_spec::scp11::cert::{self, Certificate, Role};
use apdu_spec::token::MAX_PARTY_ID;
use card_client::keyfile::{self, KeyFileError};
use card_client::scp11::{self, Authority, OceCredentials, OceFileError, Scp11Error};
use p256::ecdsa::SigningKey;
use serde::{Deserialize, Serialize};
use token::{BankSigningKey, CreditPrivateKey};

use crate::files::{Fingerprint, write_public};
use crate::wire::Validity;

/// The file names inside an organisation's directory.
pub mod paths {
    /// What the directory is: `{"format":"linkcard-organisation","version":1,"party":…,"id":…}`; written last.
    pub const ORGANISATION: &str = "organisation.json";
    /// The identity key that signs the organisation's contract bundles (PKCS#8).
    pub const IDENTITY_KEY: &str = "identity.key";
    /// Its public half (SPKI), to hand to the other party out of band.
    pub const IDENTITY_PUB: &str = "identity.pub";
    /// The CA that certifies the organisation's terminals' SCP11 OCE keys.
    pub const OCE_CA_KEY: &str = "oce-ca.key";
    /// Its public half.
    pub const OCE_CA_PUB: &str = "oce-ca.pub";
    /// Bank: the key that signs payment tokens.
    pub const TOKEN_SIGNING_KEY: &str = "token-signing.key";
    /// Bank: its public half.
    pub const TOKEN_SIGNING_PUB: &str = "token-signing.pub";
    /// Bank (card issuer): the CA that certifies the cards' domain keys.
    pub const CARD_CA_KEY: &str = "card-ca.key";
    /// Bank: its public half.
    pub const CARD_CA_PUB: &str = "card-ca.pub";
    /// Bank: the issuer OCE, `issuer.key` and `issuer.cert` (role issuer, by the OCE CA).
    pub const ISSUER: &str = "issuer";
    /// Bank: the OCE key of Fig. 15 deliveries; each credit company certifies it (`contracts/`).
    pub const DELIVERY_KEY: &str = "delivery.key";
    /// Bank: its public half.
    pub const DELIVERY_PUB: &str = "delivery.pub";
    /// Credit: the HPKE private key tokens are sealed to (a P-256 scalar, PKCS#8).
    pub const HPKE_KEY: &str = "hpke.key";
    /// Credit: its public half.
    pub const HPKE_PUB: &str = "hpke.pub";
    /// Terminal OCEs: `oce/NAME.key` and `oce/NAME.cert`.
    pub const OCE_DIR: &str = "oce";
    /// Imported contracts: `contracts/PEER.json` (the bundle) and `contracts/PEER.identity.pub`.
    pub const CONTRACTS_DIR: &str = "contracts";
}

const ORGANISATION_FORMAT: &str = "linkcard-organisation";
const ORGANISATION_VERSION: u32 = 1;

/// Which side an organisation is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Party {
    /// The bank, also the card issuer.
    Bank,
    /// The credit company.
    Credit,
}

/// Why an organisation's keys cannot be created, read or used.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// A key file.
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
    /// An OCE's files.
    #[error(transparent)]
    Oce(#[from] OceFileError),
    /// A certificate could not be made.
    #[error("cannot issue the certificate")]
    Certificate(#[from] Scp11Error),
    /// No random numbers for a new key.
    #[error("no random numbers for a new key")]
    Entropy(#[from] card_client::EntropyError),
    /// A directory or the organisation file.
    #[error("cannot access {}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// `create` on a directory that already holds an organisation.
    #[error("{} already holds an organisation", path.display())]
    AlreadyExists {
        /// The directory.
        path: PathBuf,
    },
    /// The organisation file is not one this crate wrote.
    #[error("{} is not a linkcard organisation file", path.display())]
    NotAnOrganisation {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Option<serde_json::Error>,
    },
    /// A bank's directory opened as a credit company's, or the reverse.
    #[error("the organisation is a {found:?}, not a {expected:?}")]
    WrongParty {
        /// What was asked for.
        expected: Party,
        /// What the directory holds.
        found: Party,
    },
    /// An organisation id is 1-16 bytes.
    #[error("an organisation id must be 1-16 bytes")]
    InvalidId,
    /// A terminal name is 1-20 characters of `A-Z a-z 0-9 - _ .`, not starting with `.`.
    #[error("invalid terminal name {0:?}: 1-20 of A-Z a-z 0-9 - _ . and not starting with .")]
    InvalidName(String),
    /// The HPKE key file holds no valid DHKEM(P-256) key (cannot happen with a P-256 key).
    #[error("not a valid HPKE key")]
    Hpke(#[from] token::InvalidKey),
    /// The issuer certificate is not signed by the organisation's OCE CA.
    #[error("{} is not certified by the OCE CA", path.display())]
    NotCertified {
        /// The certificate file.
        path: PathBuf,
        /// Why it does not verify.
        source: cert::CertError,
    },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> KeysError + '_ {
    move |source| KeysError::Io {
        path: path.to_owned(),
        source,
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrganisationFile {
    format: String,
    version: u32,
    party: Party,
    id: String,
}

fn new_secret() -> Result<p256::SecretKey, KeysError> {
    Ok(p256::SecretKey::from(scp11::random_scalar()?))
}

/// Writes a new private key and its public half.
fn create_key_pair(dir: &Path, key: &str, public: &str) -> Result<p256::SecretKey, KeysError> {
    let secret = new_secret()?;
    keyfile::write_secret(&dir.join(key), &secret)?;
    write_public(&dir.join(public), &secret.public_key())?;
    Ok(secret)
}

fn read_key(dir: &Path, name: &str) -> Result<p256::SecretKey, KeysError> {
    Ok(keyfile::read_secret(&dir.join(name))?)
}

/// What every organisation has: its directory, id, identity key and OCE CA.
#[derive(Debug)]
pub struct Organisation {
    dir: PathBuf,
    party: Party,
    id: Vec<u8>,
    identity: SigningKey,
    oce_ca: Authority,
}

impl Organisation {
    fn create(dir: &Path, party: Party, id: &[u8]) -> Result<Self, KeysError> {
        if id.is_empty() || id.len() > MAX_PARTY_ID {
            return Err(KeysError::InvalidId);
        }
        let marker = dir.join(paths::ORGANISATION);
        if marker.exists() {
            return Err(KeysError::AlreadyExists {
                path: dir.to_owned(),
            });
        }
        for sub in [paths::OCE_DIR, paths::CONTRACTS_DIR] {
            let path = dir.join(sub);
            std::fs::create_dir_all(&path).map_err(io_error(&path))?;
        }
        let identity = create_key_pair(dir, paths::IDENTITY_KEY, paths::IDENTITY_PUB)?;
        let oce_ca = create_key_pair(dir, paths::OCE_CA_KEY, paths::OCE_CA_PUB)?;
        Ok(Self {
            dir: dir.to_owned(),
            party,
            id: id.to_vec(),
            identity: SigningKey::from(&identity),
            oce_ca: Authority::from_key(&oce_ca),
        })
    }

    /// Writes `organisation.json`, the last file: a directory without it was never completely created.
    fn finish(&self) -> Result<(), KeysError> {
        let file = OrganisationFile {
            format: ORGANISATION_FORMAT.to_owned(),
            version: ORGANISATION_VERSION,
            party: self.party,
            id: hex::encode(&self.id),
        };
        let mut text =
            serde_json::to_vec_pretty(&file).map_err(|source| KeysError::NotAnOrganisation {
                path: self.dir.join(paths::ORGANISATION),
                source: Some(source),
            })?;
        text.push(b'\n');
        keyfile::write_new(&self.dir.join(paths::ORGANISATION), &text, 0o644)?;
        Ok(())
    }

    fn load(dir: &Path, expected: Party) -> Result<Self, KeysError> {
        let path = dir.join(paths::ORGANISATION);
        let text = std::fs::read(&path).map_err(io_error(&path))?;
        let not_ours = |source| KeysError::NotAnOrganisation {
            path: path.clone(),
            source,
        };
        let file: OrganisationFile =
            serde_json::from_slice(&text).map_err(|error| not_ours(Some(error)))?;
        let id = hex::decode(&file.id).map_err(|_| not_ours(None))?;
        if file.format != ORGANISATION_FORMAT
            || file.version != ORGANISATION_VERSION
            || id.is_empty()
            || id.len() > MAX_PARTY_ID
        {
            return Err(not_ours(None));
        }
        if file.party != expected {
            return Err(KeysError::WrongParty {
                expected,
                found: file.party,
            });
        }
        Ok(Self {
            dir: dir.to_owned(),
            party: file.party,
            id,
            identity: SigningKey::from(&read_key(dir, paths::IDENTITY_KEY)?),
            oce_ca: Authority::from_key(&read_key(dir, paths::OCE_CA_KEY)?),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bank or credit company.
    pub fn party(&self) -> Party {
        self.party
    }

    /// The organisation's id (1-16 bytes, as tokens carry it).
    pub fn id(&self) -> &[u8] {
        &self.id
    }

    /// The key that signs this organisation's bundles.
    pub fn identity(&self) -> &SigningKey {
        &self.identity
    }

    /// The identity public key's fingerprint, to read out to the other party.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&p256::PublicKey::from(self.identity.verifying_key()))
    }

    /// The CA of this organisation's terminals.
    pub fn oce_ca(&self) -> &Authority {
        &self.oce_ca
    }

    /// The files of the terminal OCE `name`: `oce/NAME` (`.key`, `.cert`), for [`scp11::load_oce`].
    pub fn terminal_prefix(&self, name: &str) -> Result<PathBuf, KeysError> {
        let valid = (1..=20).contains(&name.len())
            && !name.starts_with('.')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !valid {
            return Err(KeysError::InvalidName(name.to_owned()));
        }
        Ok(self.dir.join(paths::OCE_DIR).join(name))
    }

    /// A new OCE key certified by the OCE CA for `role`, written to `oce/NAME.key` and `oce/NAME.cert` (neither
    /// may exist); the certificate's subject is `name`.
    fn issue_terminal(
        &self,
        name: &str,
        role: Role,
        validity: Validity,
    ) -> Result<OceCredentials, KeysError> {
        let prefix = self.terminal_prefix(name)?;
        write_oce(&self.oce_ca, &prefix, name.as_bytes(), role, validity)
    }

    /// Loads the terminal OCE `name`, checking that its certificate certifies its key.
    pub fn load_terminal(&self, name: &str) -> Result<OceCredentials, KeysError> {
        Ok(scp11::load_oce(&self.terminal_prefix(name)?)?)
    }
}

/// Issues an OCE for `role` and writes `PREFIX.key` (PKCS#8) and `PREFIX.cert` (the GP certificate, binary).
fn write_oce(
    ca: &Authority,
    prefix: &Path,
    subject: &[u8],
    role: Role,
    validity: Validity,
) -> Result<OceCredentials, KeysError> {
    let (key_path, cert_path) = scp11::oce_paths(prefix);
    if key_path.exists() || cert_path.exists() {
        let error = std::io::Error::from(std::io::ErrorKind::AlreadyExists);
        return Err(KeyFileError::Create {
            path: key_path,
            source: error,
        }
        .into());
    }
    let credentials = ca.issue_oce(subject, role, validity.from, validity.until)?;
    keyfile::write_secret(&key_path, &p256::SecretKey::from(credentials.static_key))?;
    for certificate in &credentials.chain {
        keyfile::write_new(&cert_path, certificate, 0o644)?;
    }
    Ok(credentials)
}

/// The bank's keys (it is also the card issuer).
#[derive(Debug)]
pub struct BankKeys {
    org: Organisation,
    token_signing: BankSigningKey,
    card_ca: Authority,
    issuer: OceCredentials,
    delivery: p256::SecretKey,
}

impl BankKeys {
    /// Creates every key of bank `bank_id` in `dir` (made if missing; refused if it holds an organisation or
    /// any of the files), the issuer OCE certified for `issuer_validity`.
    pub fn create(
        dir: &Path,
        bank_id: &[u8],
        issuer_validity: Validity,
    ) -> Result<Self, KeysError> {
        let org = Organisation::create(dir, Party::Bank, bank_id)?;
        let token = create_key_pair(dir, paths::TOKEN_SIGNING_KEY, paths::TOKEN_SIGNING_PUB)?;
        let card_ca = create_key_pair(dir, paths::CARD_CA_KEY, paths::CARD_CA_PUB)?;
        let delivery = create_key_pair(dir, paths::DELIVERY_KEY, paths::DELIVERY_PUB)?;
        let issuer = write_oce(
            &org.oce_ca,
            &dir.join(paths::ISSUER),
            b"issuer",
            Role::Issuer,
            issuer_validity,
        )?;
        org.finish()?;
        Ok(Self {
            org,
            token_signing: BankSigningKey::from(&token),
            card_ca: Authority::from_key(&card_ca),
            issuer,
            delivery,
        })
    }

    /// Loads the bank in `dir`, checking that the issuer certificate certifies the issuer key and that the OCE
    /// CA signed it.
    pub fn load(dir: &Path) -> Result<Self, KeysError> {
        let org = Organisation::load(dir, Party::Bank)?;
        let issuer = scp11::load_oce(&dir.join(paths::ISSUER))?;
        let (_, cert_path) = scp11::oce_paths(&dir.join(paths::ISSUER));
        check_certified(&org.oce_ca, &issuer, &cert_path)?;
        Ok(Self {
            token_signing: BankSigningKey::from(&read_key(dir, paths::TOKEN_SIGNING_KEY)?),
            card_ca: Authority::from_key(&read_key(dir, paths::CARD_CA_KEY)?),
            delivery: read_key(dir, paths::DELIVERY_KEY)?,
            issuer,
            org,
        })
    }

    /// What every organisation has.
    pub fn organisation(&self) -> &Organisation {
        &self.org
    }

    /// The bank id.
    pub fn id(&self) -> &[u8] {
        &self.org.id
    }

    /// The key that signs tokens (`token::mint`).
    pub fn token_signing_key(&self) -> &BankSigningKey {
        &self.token_signing
    }

    /// The CA that certifies the cards' domain keys.
    pub fn card_ca(&self) -> &Authority {
        &self.card_ca
    }

    /// The issuer OCE (role issuer), for card issuing.
    pub fn issuer(&self) -> &OceCredentials {
        &self.issuer
    }

    /// The delivery OCE's public key, which each credit company certifies for Fig. 15.
    pub fn delivery_public_key(&self) -> apdu_spec::scp11::session::PublicKeyBytes {
        scp11::public_key_of(&self.delivery.to_nonzero_scalar())
    }

    pub(crate) fn delivery_key(&self) -> &p256::SecretKey {
        &self.delivery
    }

    /// A new ATM OCE (role bank-atm), `oce/NAME.key` and `oce/NAME.cert`.
    pub fn issue_atm(&self, name: &str, validity: Validity) -> Result<OceCredentials, KeysError> {
        self.org.issue_terminal(name, Role::BankAtm, validity)
    }
}

fn check_certified(
    ca: &Authority,
    oce: &OceCredentials,
    cert_path: &Path,
) -> Result<(), KeysError> {
    let not_certified = |source| KeysError::NotCertified {
        path: cert_path.to_owned(),
        source,
    };
    for certificate in &oce.chain {
        let (parsed, _) = Certificate::parse(certificate).map_err(not_certified)?;
        parsed
            .verify_signature(ca.key.verifying_key())
            .map_err(not_certified)?;
    }
    Ok(())
}

/// The credit company's keys.
#[derive(Debug)]
pub struct CreditKeys {
    org: Organisation,
    hpke: CreditPrivateKey,
}

/// The HPKE key of a P-256 secret key: the same scalar (RFC 9180 §7.1.2).
fn hpke_key(secret: &p256::SecretKey) -> Result<CreditPrivateKey, KeysError> {
    let scalar: [u8; 32] = secret.to_bytes().into();
    Ok(CreditPrivateKey::from_bytes(&scalar)?)
}

impl CreditKeys {
    /// Creates every key of credit company `credit_id` in `dir` (made if missing; refused if it holds an
    /// organisation or any of the files).
    pub fn create(dir: &Path, credit_id: &[u8]) -> Result<Self, KeysError> {
        let org = Organisation::create(dir, Party::Credit, credit_id)?;
        let hpke = create_key_pair(dir, paths::HPKE_KEY, paths::HPKE_PUB)?;
        org.finish()?;
        Ok(Self {
            org,
            hpke: hpke_key(&hpke)?,
        })
    }

    /// Loads the credit company in `dir`.
    pub fn load(dir: &Path) -> Result<Self, KeysError> {
        let org = Organisation::load(dir, Party::Credit)?;
        let hpke = hpke_key(&read_key(dir, paths::HPKE_KEY)?)?;
        Ok(Self { org, hpke })
    }

    /// What every organisation has.
    pub fn organisation(&self) -> &Organisation {
        &self.org
    }

    /// The credit company id.
    pub fn id(&self) -> &[u8] {
        &self.org.id
    }

    /// The HPKE private key (`token::CreditRecipient::add_key`).
    pub fn hpke_key(&self) -> &CreditPrivateKey {
        &self.hpke
    }

    /// Who opens tokens: this company with its HPKE key.
    pub fn recipient(&self) -> token::CreditRecipient {
        let mut recipient = token::CreditRecipient::new(&self.org.id);
        recipient.add_key(self.hpke.clone());
        recipient
    }

    /// A new POS OCE (role credit-pos), `oce/NAME.key` and `oce/NAME.cert`.
    pub fn issue_pos(&self, name: &str, validity: Validity) -> Result<OceCredentials, KeysError> {
        self.org.issue_terminal(name, Role::CreditPos, validity)
    }
}
