//! Imported contracts in the organisation's directory: `contracts/PEER.json` (the bundle exactly as received)
//! and `contracts/PEER.identity.pub` (the sender's identity key it was verified against), PEER the other party's
//! id in lowercase hex. Loading checks the bundle again, as on import, so a file changed since is refused.

use std::path::{Path, PathBuf};

use apdu_spec::scp11::cert::Date;
use card_client::keyfile::{self, KeyFileError};

use crate::acceptance::BankContract;
use crate::bundle::BundleError;
use crate::files::write_public;
use crate::offer::CreditContract;
use crate::org::{BankKeys, CreditKeys, Organisation, paths};

/// Why a contract cannot be saved or loaded.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A contract with this party is already saved (replace it only by removing the files deliberately).
    #[error("a contract is already saved at {}", path.display())]
    AlreadySaved {
        /// The existing file.
        path: PathBuf,
    },
    /// No contract with this party is saved.
    #[error("no contract saved at {}", path.display())]
    NotFound {
        /// The missing file.
        path: PathBuf,
    },
    /// A contract file cannot be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// A key file cannot be read or written.
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
    /// The saved bundle no longer passes the import checks (changed, or expired).
    #[error("the saved contract is refused")]
    Bundle(#[from] BundleError),
}

fn contract_paths(org: &Organisation, peer_id: &[u8]) -> (PathBuf, PathBuf) {
    let dir = org.dir().join(paths::CONTRACTS_DIR);
    let peer = hex::encode(peer_id);
    (
        dir.join(format!("{peer}.json")),
        dir.join(format!("{peer}.identity.pub")),
    )
}

fn save(
    org: &Organisation,
    peer_id: &[u8],
    bundle: &[u8],
    identity: &p256::PublicKey,
) -> Result<(), StoreError> {
    let (bundle_path, identity_path) = contract_paths(org, peer_id);
    for path in [&bundle_path, &identity_path] {
        if path.exists() {
            return Err(StoreError::AlreadySaved { path: path.clone() });
        }
    }
    write_public(&identity_path, identity)?;
    keyfile::write_new(&bundle_path, bundle, 0o644)?;
    Ok(())
}

fn read(org: &Organisation, peer_id: &[u8]) -> Result<(Vec<u8>, p256::PublicKey), StoreError> {
    let (bundle_path, identity_path) = contract_paths(org, peer_id);
    let bundle = std::fs::read(&bundle_path).map_err(|source| read_error(&bundle_path, source))?;
    if !identity_path.exists() {
        return Err(StoreError::NotFound {
            path: identity_path,
        });
    }
    Ok((bundle, keyfile::read_public(&identity_path)?))
}

fn read_error(path: &Path, source: std::io::Error) -> StoreError {
    if source.kind() == std::io::ErrorKind::NotFound {
        StoreError::NotFound {
            path: path.to_owned(),
        }
    } else {
        StoreError::Read {
            path: path.to_owned(),
            source,
        }
    }
}

/// The peer ids of the saved contracts, sorted.
fn saved(org: &Organisation) -> Result<Vec<Vec<u8>>, StoreError> {
    let dir = org.dir().join(paths::CONTRACTS_DIR);
    let entries = std::fs::read_dir(&dir).map_err(|source| read_error(&dir, source))?;
    let mut ids = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| read_error(&dir, source))?;
        let name = entry.file_name();
        let id = name
            .to_str()
            .and_then(|name| name.strip_suffix(".json"))
            .and_then(|peer| hex::decode(peer).ok());
        ids.extend(id);
    }
    ids.sort();
    Ok(ids)
}

impl BankKeys {
    /// Saves an imported contract (never over a saved one).
    pub fn save_contract(&self, contract: &BankContract) -> Result<(), StoreError> {
        save(
            self.organisation(),
            contract.credit_id(),
            contract.bundle(),
            contract.credit_identity(),
        )
    }

    /// Loads the contract with credit company `credit_id`, checked again as on import for `today`.
    pub fn load_contract(&self, credit_id: &[u8], today: Date) -> Result<BankContract, StoreError> {
        let (bundle, identity) = read(self.organisation(), credit_id)?;
        let contract = self.import_acceptance(&bundle, &identity, today)?;
        if contract.credit_id() != credit_id {
            return Err(StoreError::Bundle(BundleError::NotForUs {
                expected: hex::encode(credit_id),
                found: hex::encode(contract.credit_id()),
            }));
        }
        Ok(contract)
    }

    /// The credit companies this bank has saved contracts with.
    pub fn contracts(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        saved(self.organisation())
    }
}

impl CreditKeys {
    /// Saves an imported contract (never over a saved one).
    pub fn save_contract(&self, contract: &CreditContract) -> Result<(), StoreError> {
        save(
            self.organisation(),
            contract.bank_id(),
            contract.bundle(),
            contract.bank_identity(),
        )
    }

    /// Loads the contract with bank `bank_id`, checked again as on import for `today`.
    pub fn load_contract(&self, bank_id: &[u8], today: Date) -> Result<CreditContract, StoreError> {
        let (bundle, identity) = read(self.organisation(), bank_id)?;
        let contract = self.import_offer(&bundle, &identity, today)?;
        if contract.bank_id() != bank_id {
            return Err(StoreError::Bundle(BundleError::NotForUs {
                expected: hex::encode(bank_id),
                found: hex::encode(contract.bank_id()),
            }));
        }
        Ok(contract)
    }

    /// The banks this company has saved contracts with.
    pub fn contracts(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        saved(self.organisation())
    }
}
