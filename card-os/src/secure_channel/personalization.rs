//! STORE DATA into a security domain: one personalization data object per command
//! ([`apdu_spec::scp11::personalization`]). Who may send it, and how protected, is the card manager's
//! [`apdu_spec::gp::REQUIREMENTS`].

use apdu_spec::scp11::session::{PublicKeyBytes, public_key_of};
use apdu_spec::scp11::{self as scp, cert::Date, personalization as perso};
use apdu_spec::{StatusWord, tlv};
use p256::elliptic_curve::Generate;
use zeroize::Zeroize;

use super::domain::{self, SecretScalar};
use super::{MAX_ID, SecureChannel};
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
        let (object, rest) = tlv::read(data).map_err(|_| StatusWord::WRONG_DATA)?;
        if !rest.is_empty() {
            return Err(StatusWord::WRONG_DATA);
        }
        match object.tag {
            perso::TAG_STATIC_KEY => import_key(store, owner, object.value),
            perso::TAG_GENERATE_KEY => self.generate_key(store, owner, object.value, reply),
            scp::TAG_CERTIFICATE_STORE => domain::store_certificates(store, owner, object.value),
            perso::TAG_TRUST_ANCHOR => add_anchor(store, owner, object.value),
            perso::TAG_CARD_DATE => {
                let date =
                    Date(<[u8; 4]>::try_from(object.value).map_err(|_| StatusWord::WRONG_DATA)?);
                if !domain::valid_date(date) {
                    return Err(StatusWord::WRONG_DATA);
                }
                domain::advance_date(store, date)
            }
            _ => Err(StatusWord::REFERENCED_DATA_NOT_FOUND),
        }
    }

    /// `DF23 00`: a new key pair, kept aside until its chain arrives; answers `B0 41 <public key>`.
    fn generate_key(
        &mut self,
        store: &mut dyn StoreAccess,
        owner: u8,
        value: &[u8],
        reply: &mut Reply<'_>,
    ) -> Result<(), StatusWord> {
        if !value.is_empty() {
            return Err(StatusWord::WRONG_DATA);
        }
        let rng = self
            .rng
            .as_mut()
            .ok_or(StatusWord::CONDITIONS_NOT_SATISFIED)?;
        let key = SecretScalar(<p256::NonZeroScalar as Generate>::generate_from_rng(rng));
        self.count_scalar_multiplications(1);
        domain::set_pending_key(store, owner, &key)?;
        let mut writer = tlv::Writer::new(reply.spare());
        writer
            .tlv(perso::TAG_PUBLIC_KEY, &public_key_of(&key))
            .map_err(|_| StatusWord::UNKNOWN)?;
        let written = writer.len();
        reply.advance(written)
    }
}

/// `DF20 20 <scalar>`: a key generated off the card, kept aside until its chain arrives.
fn import_key(store: &mut dyn StoreAccess, owner: u8, value: &[u8]) -> Result<(), StatusWord> {
    let mut bytes = <[u8; 32]>::try_from(value).map_err(|_| StatusWord::WRONG_DATA)?;
    let key: Option<p256::NonZeroScalar> = p256::NonZeroScalar::from_repr(bytes.into()).into();
    bytes.zeroize();
    let key = key.map(SecretScalar).ok_or(StatusWord::WRONG_DATA)?;
    domain::set_pending_key(store, owner, &key)
}

/// `BF22 { 42 <id>, B0 <key> }`: a trust anchor.
fn add_anchor(store: &mut dyn StoreAccess, owner: u8, value: &[u8]) -> Result<(), StatusWord> {
    let id = tlv::find(value, 0x42)
        .map_err(|_| StatusWord::WRONG_DATA)?
        .ok_or(StatusWord::WRONG_DATA)?;
    let key = tlv::find(value, perso::TAG_PUBLIC_KEY)
        .map_err(|_| StatusWord::WRONG_DATA)?
        .ok_or(StatusWord::WRONG_DATA)?;
    if id.is_empty() || id.len() > MAX_ID {
        return Err(StatusWord::WRONG_DATA);
    }
    p256::PublicKey::from_sec1_bytes(key).map_err(|_| StatusWord::WRONG_DATA)?;
    let key = PublicKeyBytes::try_from(key).map_err(|_| StatusWord::WRONG_DATA)?;
    domain::add_anchor(store, owner, id, &key)
}
