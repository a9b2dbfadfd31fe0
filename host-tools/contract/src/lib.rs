//! The key exchange between a bank and a credit company (patent Fig. 6 and 9), as files.
//!
//! * **Organisation keys** ([`BankKeys`], [`CreditKeys`]): every key an organisation holds, created once into its
//!   own directory as PEM files OpenSSL reads and writes (PKCS#8 private keys, SPKI public keys), never
//!   overwritten.
//! * **Contract bundles** (`docs/contract.md`): the bank's [`BankOffer`] and the credit company's
//!   [`CreditAcceptance`], JSON signed by the sender's identity key. Importing one checks it completely and gives
//!   a typed contract ([`CreditContract`] on the credit side, [`BankContract`] on the bank side) holding the
//!   other party's keys, ready for `token::mint` / `token::open` and for card personalization.
//!
//! The bank and the credit company never link each other's code: they meet through these files. This crate links
//! `token`, `apdu-spec` and `card-client` (without `pcsc`); never the card.

#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod acceptance;
mod bundle;
mod files;
mod offer;
mod org;
mod store;
mod wire;

pub use acceptance::{BankContract, CreditAcceptance, CreditAppletParameters};
pub use bundle::{BundleError, ExportError, FORMAT, Kind, Mismatch, VERSION};
pub use files::{Fingerprint, read_identity};
pub use offer::{BankOffer, CreditContract};
pub use org::{BankKeys, CreditKeys, KeysError, Organisation, Party, paths};
pub use store::StoreError;
pub use wire::Validity;

pub use apdu_spec::scp11::cert::{Date, Role};
pub use card_client::scp11::{Anchor, Authority, OceCredentials};
