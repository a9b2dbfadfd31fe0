//! STORE DATA into a security domain: one personalization data object per command
//! ([`apdu_spec::scp11::personalization::DataObject`]). Who may send it, and how protected, is the card
//! manager's [`apdu_spec::gp::REQUIREMENTS`].

use apdu_spec::scp11::personalization::{DataObject, TAG_PUBLIC_KEY};
use apdu_spec::scp11::session::public_key_of;
use apdu_spec::{StatusWord, tlv};
use p256::elliptic_curve::Generate;
use zeroize::Zeroize;

use super::SecureChannel;
use super::domain::{self, SecretScalar};
use crate::applet::Reply;
use crate::store::StoreAccess;

impl SecureChannel {
    /// Stores one personalization data object into the domain `owner`.
    pub(crate) fn personalize(
        &mut self,
        store: &mut dyn StoreAccess,
        owner: u8,
        data: &[u8],
        reply: &mut Reply<'_>,
    ) -> Result<(), StatusWord> {
        match DataObject::parse(data)? {
            DataObject::StaticKey(scalar) => import_key(store, owner, scalar),
            DataObject::GenerateKey => self.generate_key(store, owner, reply),
            DataObject::Certificates(chain) => domain::store_certificates(store, owner, chain),
            DataObject::TrustAnchor { id, key } => {
                p256::PublicKey::from_sec1_bytes(key).map_err(|_| StatusWord::WRONG_DATA)?;
                domain::add_anchor(store, owner, id, key)
            }
            DataObject::CardDate(date) => domain::advance_date(store, date),
        }
    }

    /// `DF23`: a new key pair, kept aside until its chain arrives; answers `B0 41 <public key>`.
    fn generate_key(
        &mut self,
        store: &mut dyn StoreAccess,
        owner: u8,
        reply: &mut Reply<'_>,
    ) -> Result<(), StatusWord> {
        let rng = self
            .rng
            .as_mut()
            .ok_or(StatusWord::CONDITIONS_NOT_SATISFIED)?;
        let key = SecretScalar(<p256::NonZeroScalar as Generate>::generate_from_rng(rng));
        self.count_scalar_multiplications(1);
        domain::set_pending_key(store, owner, &key)?;
        let mut writer = tlv::Writer::new(reply.spare());
        writer
            .tlv(TAG_PUBLIC_KEY, &public_key_of(&key))
            .map_err(|_| StatusWord::UNKNOWN)?;
        let written = writer.len();
        reply.advance(written)
    }
}

/// `DF20`: a key generated off the card, kept aside until its chain arrives.
fn import_key(store: &mut dyn StoreAccess, owner: u8, scalar: &[u8; 32]) -> Result<(), StatusWord> {
    let mut bytes = *scalar;
    let key: Option<p256::NonZeroScalar> = p256::NonZeroScalar::from_repr(bytes.into()).into();
    bytes.zeroize();
    let key = key.map(SecretScalar).ok_or(StatusWord::WRONG_DATA)?;
    domain::set_pending_key(store, owner, &key)
}
