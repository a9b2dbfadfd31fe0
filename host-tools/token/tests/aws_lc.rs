//! The AWS-LC opener (feature `aws-lc`) against the published HPKE vectors and against RustCrypto's: RFC 9180
//! §A.3.1 (base mode, sequence number 0) decrypts to the RFC's plaintext; the golden tokens open to the same
//! bodies; and on random tokens and every one-byte change of one, both openers give the same answer, error for
//! error.

mod common;

use aws_lc_rs::agreement::{ECDH_P256, PrivateKey};
use common::*;
use proptest::prelude::*;
use token::{AwsLc, RustCrypto, TokenBody, mint, open_with};

fn bytes(hex_text: &str) -> Vec<u8> {
    hex::decode(hex_text).unwrap()
}

#[test]
fn rfc_9180_a_3_1_base_mode_opens() {
    // RFC 9180 §A.3.1: skRm, pkRm, enc, info, and §A.3.1.1 sequence number 0.
    let sk_rm = bytes("f3ce7fdae57e1a310d87f1ebbde6f328be0a99cdbcadf4d6589cf29de4b8ffd2");
    let pk_rm: [u8; 65] = bytes("04fe8c19ce0905191ebc298a9245792531f26f0cece2460639e8bc39cb7f706a826a779b4cf969b8a0e539c7f62fb3d30ad6aa8f80e30f1d128aafd68a2ce72ea0").try_into().unwrap();
    let enc: [u8; 65] = bytes("04a92719c6195d5085104f469a8b9814d5838ff72b60501e2c4466e5e67b325ac98536d7b61a1af4b78e5b7f951c0900be863c403ce65c9bfcb9382657222d18c4").try_into().unwrap();
    let info = bytes("4f6465206f6e2061204772656369616e2055726e");
    let aad = bytes("436f756e742d30");
    let ciphertext = bytes(
        "5ad590bb8baa577f8619db35a36311226a896e7342a6d836d8b7bcd2f20b6c7f9076ac232e3ab2523f39513434",
    );
    let plaintext = bytes("4265617574792069732074727574682c20747275746820626561757479");
    let private = PrivateKey::from_private_key(&ECDH_P256, &sk_rm).unwrap();
    let opened = token::aws_lc::open_base(&private, &pk_rm, &enc, &info, &aad, &ciphertext);
    assert_eq!(
        opened.as_deref().map(Vec::as_slice),
        Some(plaintext.as_slice())
    );
    // A changed tag, aad or info is refused.
    let mut bad = ciphertext.clone();
    *bad.last_mut().unwrap() ^= 1;
    assert!(token::aws_lc::open_base(&private, &pk_rm, &enc, &info, &aad, &bad).is_none());
    assert!(
        token::aws_lc::open_base(&private, &pk_rm, &enc, &info, b"Count-1", &ciphertext).is_none()
    );
    assert!(
        token::aws_lc::open_base(&private, &pk_rm, &enc, b"other", &aad, &ciphertext).is_none()
    );
}

fn both(
    bytes: &[u8],
    body: &TokenBody,
) -> (
    Result<TokenBody, token::OpenError>,
    Result<TokenBody, token::OpenError>,
) {
    let recipient = recipient_for(&body.credit_id);
    let banks = keyring_for(&body.bank_id);
    let fast = AwsLc::for_recipient(&recipient).unwrap();
    // The credit system keeps the banks' keys parsed: that path must answer exactly as the other.
    let mut kept = AwsLc::for_recipient(&recipient).unwrap();
    for key in banks.keys() {
        kept.keep_parsed(key).unwrap();
    }
    let binding = Some(&body.card_binding);
    let fast_answer = open_with(&fast, bytes, &recipient, &banks, body.valid_from, binding);
    let kept_answer = open_with(&kept, bytes, &recipient, &banks, body.valid_from, binding);
    assert_eq!(
        format!("{fast_answer:?}"),
        format!("{kept_answer:?}"),
        "parsed once and parsed each time disagree"
    );
    (
        open_with(
            &RustCrypto,
            bytes,
            &recipient,
            &banks,
            body.valid_from,
            binding,
        ),
        fast_answer,
    )
}

#[test]
fn golden_tokens_open_alike() {
    for (name, body) in [
        ("token-1.hex", golden_body()),
        ("token-2-largest.hex", largest_body()),
    ] {
        let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(path).unwrap();
        let token = hex::decode(text.split_whitespace().collect::<String>()).unwrap();
        let (slow, fast) = both(&token, &body);
        assert_eq!(slow, Ok(body.clone()), "{name}");
        assert_eq!(fast, slow, "{name}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4))]
    #[test]
    fn both_openers_agree_on_every_changed_byte(seed in any::<u8>(), flip in 1u8..=255) {
        let body = golden_body();
        let token = mint(&body, &bank_key(), credit_key().public_key(), &mut seeded_rng(seed)).unwrap();
        let (slow, fast) = both(&token, &body);
        prop_assert_eq!(&slow, &Ok(body.clone()));
        prop_assert_eq!(&fast, &slow);
        // Every position changed once: the same refusal from both.
        for at in 0..token.len() {
            let mut changed = token.clone();
            changed[at] ^= flip;
            let (slow, fast) = both(&changed, &body);
            prop_assert!(slow.is_err(), "byte {} accepted", at);
            prop_assert_eq!(fast, slow, "byte {}", at);
        }
    }
}
