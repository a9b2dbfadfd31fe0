//! One test per `OpenError` variant (and per `MintError` that input can cause): each token reaches exactly the
//! check it is meant to fail, through the order of `docs/token.md` §7.

mod common;

use apdu_spec::token::{Envelope, VERSION};
use common::*;
use token::{
    BankSigningKey, CreditPrivateKey, CreditRecipient, Field, MintError, OpenError, TokenBody,
    mint, open,
};

/// A change to a body and the field it concerns.
type BodyChange = (fn(&mut TokenBody), Field);

fn today() -> token::Date {
    date(2026, 12, 15)
}

fn open_default(bytes: &[u8]) -> Result<TokenBody, OpenError> {
    open(bytes, &recipient(), &keyring(), today(), None)
}

fn good() -> Vec<u8> {
    mint(
        &golden_body(),
        &bank_key(),
        credit_key().public_key(),
        &mut seeded_rng(3),
    )
    .unwrap()
}

fn other_key() -> BankSigningKey {
    BankSigningKey::from_slice(&[0x42; 32]).unwrap()
}

#[test]
fn a_good_token_opens_and_checks_the_binding_when_asked() {
    let body = golden_body();
    assert_eq!(open_default(&good()), Ok(body.clone()));
    assert_eq!(
        open(
            &good(),
            &recipient(),
            &keyring(),
            today(),
            Some(&body.card_binding)
        ),
        Ok(body)
    );
}

#[test]
fn malformed() {
    assert_eq!(open_default(&[]), Err(OpenError::Malformed));
    let mut longer = good();
    longer.push(0);
    assert_eq!(open_default(&longer), Err(OpenError::Malformed));
}

#[test]
fn unknown_version() {
    let mut bytes = good();
    let at = bytes
        .windows(3)
        .position(|w| w == [0x80, 0x01, VERSION])
        .unwrap();
    bytes[at + 2] = 2;
    assert_eq!(open_default(&bytes), Err(OpenError::UnknownVersion(2)));
}

#[test]
fn unknown_bank_key() {
    let mut forge = Forge::of(&golden_body());
    forge.header.bank_key_id = token::bank_key_id(other_key().verifying_key());
    forge.outer_key = other_key();
    assert_eq!(open_default(&forge.build()), Err(OpenError::UnknownBankKey));
}

#[test]
fn a_bank_key_signs_only_for_its_own_bank() {
    // BANK0001's key in the header of a token claiming to come from BANK0002.
    let mut body = golden_body();
    body.bank_id = b"BANK0002".to_vec();
    let bytes = mint(
        &body,
        &bank_key(),
        credit_key().public_key(),
        &mut seeded_rng(4),
    )
    .unwrap();
    assert_eq!(open_default(&bytes), Err(OpenError::UnknownBankKey));
}

#[test]
fn bad_outer_signature() {
    let mut forge = Forge::of(&golden_body());
    forge.outer_key = other_key(); // header still names the registered key
    assert_eq!(
        open_default(&forge.build()),
        Err(OpenError::BadOuterSignature)
    );
}

#[test]
fn wrong_recipient_by_key_id() {
    let mut elsewhere = CreditRecipient::new(CREDIT_ID);
    elsewhere.add_key(CreditPrivateKey::from_bytes(&[0x24; 32]).unwrap());
    assert_eq!(
        open(&good(), &elsewhere, &keyring(), today(), None),
        Err(OpenError::WrongRecipient)
    );
}

#[test]
fn wrong_recipient_by_credit_id() {
    let other_company = recipient_for(b"CRED0002");
    assert_eq!(
        open(&good(), &other_company, &keyring(), today(), None),
        Err(OpenError::WrongRecipient)
    );
}

#[test]
fn decryption_failure() {
    // Sealed with an `info` for another pair of parties: the AEAD key differs, so opening fails.
    let mut forge = Forge::of(&golden_body());
    forge.info = token::hpke_info(b"BANK0001", b"CRED0002");
    assert_eq!(
        open_default(&forge.build()),
        Err(OpenError::DecryptionFailed)
    );
}

#[test]
fn bad_inner_signature() {
    let mut forge = Forge::of(&golden_body());
    forge.inner_key = other_key();
    assert_eq!(
        open_default(&forge.build()),
        Err(OpenError::BadInnerSignature)
    );
}

#[test]
fn header_body_mismatch_for_each_repeated_field() {
    let cases: [BodyChange; 6] = [
        (|b| b.token_id[0] ^= 1, Field::TokenId),
        (|b| b.bank_id = b"BANK0009".to_vec(), Field::BankId),
        (|b| b.credit_id = b"CRED0009".to_vec(), Field::CreditId),
        (|b| b.valid_from = date(2026, 12, 2), Field::ValidFrom),
        (|b| b.valid_until = date(2027, 1, 30), Field::ValidUntil),
        (|b| b.card_binding[31] ^= 1, Field::CardBinding),
    ];
    for (change, field) in cases {
        let mut forge = Forge::of(&golden_body());
        let mut body = golden_body();
        change(&mut body);
        forge.body_tlv = body.encode();
        assert_eq!(
            open_default(&forge.build()),
            Err(OpenError::HeaderBodyMismatch(field)),
            "{field:?}"
        );
    }
}

#[test]
fn a_signed_but_undecodable_body_is_malformed() {
    let mut forge = Forge::of(&golden_body());
    forge.body_tlv = vec![0xA3, 0x01, 0x00];
    assert_eq!(open_default(&forge.build()), Err(OpenError::Malformed));
}

#[test]
fn not_yet_valid() {
    let before = date(2026, 11, 30);
    assert_eq!(
        open(&good(), &recipient(), &keyring(), before, None),
        Err(OpenError::NotYetValid {
            valid_from: date(2026, 12, 1),
            today: before
        })
    );
}

#[test]
fn expired() {
    let after = date(2027, 2, 1);
    assert_eq!(
        open(&good(), &recipient(), &keyring(), after, None),
        Err(OpenError::Expired {
            valid_until: date(2027, 1, 31),
            today: after
        })
    );
    // The last day is still valid.
    assert!(open(&good(), &recipient(), &keyring(), date(2027, 1, 31), None).is_ok());
}

#[test]
fn card_binding_mismatch() {
    assert_eq!(
        open(
            &good(),
            &recipient(),
            &keyring(),
            today(),
            Some(&[0x00; 32])
        ),
        Err(OpenError::CardBindingMismatch)
    );
}

#[test]
fn the_outer_signature_is_checked_before_decrypting() {
    // Junk ciphertext under a bad signature reports the signature, not the decryption.
    let mut bytes = good();
    let parsed = Envelope::parse(&bytes).unwrap();
    let at = bytes.len() - 67 - 1; // last ciphertext byte
    assert_eq!(bytes[at], *parsed.ciphertext.last().unwrap());
    bytes[at] ^= 1;
    assert_eq!(open_default(&bytes), Err(OpenError::BadOuterSignature));
}

#[test]
fn mint_refuses_each_out_of_bounds_field() {
    let cases: [BodyChange; 12] = [
        (|b| b.bank_id = vec![], Field::BankId),
        (|b| b.bank_id = vec![b'B'; 17], Field::BankId),
        (|b| b.credit_id = vec![], Field::CreditId),
        (
            |b| b.valid_from = token::Date([0x20, 0x26, 0x13, 0x01]),
            Field::ValidFrom,
        ),
        (|b| b.valid_until = date(2026, 11, 30), Field::ValidUntil),
        (|b| b.deposit_date = token::Date([0; 4]), Field::DepositDate),
        (|b| b.user_name = "n".repeat(49), Field::UserName),
        (|b| b.user_id = "tab\there".into(), Field::UserId),
        (|b| b.currency = 1000, Field::Currency),
        (|b| b.bank_account = String::new(), Field::BankAccount),
        (|b| b.pan = "41111111111".into(), Field::Pan),
        (|b| b.pan = "411111111111111A".into(), Field::Pan),
    ];
    for (change, field) in cases {
        let mut body = golden_body();
        change(&mut body);
        assert_eq!(
            mint(
                &body,
                &bank_key(),
                credit_key().public_key(),
                &mut seeded_rng(5)
            ),
            Err(MintError::InvalidField(field)),
            "{field:?}"
        );
    }
}

#[test]
fn a_token_minted_with_the_os_generator_opens() {
    let mut rng = token::os_rng().unwrap();
    let bytes = mint(
        &golden_body(),
        &bank_key(),
        credit_key().public_key(),
        &mut rng,
    )
    .unwrap();
    assert_eq!(open_default(&bytes), Ok(golden_body()));
    // Fresh randomness: the same body never gives the same token twice.
    let again = mint(
        &golden_body(),
        &bank_key(),
        credit_key().public_key(),
        &mut rng,
    )
    .unwrap();
    assert_ne!(bytes, again);
}
