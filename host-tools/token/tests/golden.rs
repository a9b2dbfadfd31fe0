//! Golden tokens (`tests/golden/*.hex`, made with the TEST-ONLY keys in `tests/keys/`): they still open to the
//! expected bodies, re-encoding their parts reproduces them byte for byte, and minting again with the same
//! seeded generator gives the same bytes (ECDSA here is deterministic, RFC 6979; HPKE takes the generator).
//!
//! Regenerate (after a deliberate format change only):
//! `flock /tmp/linkcard-cargo.lock cargo test -p token --test golden -- --ignored regenerate`

mod common;

use apdu_spec::token::{Envelope, envelope, sealed_tlv};
use common::*;
use token::{TokenBody, mint, open};

/// Golden token files, their bodies, their generator seeds, and the day they are checked on.
fn goldens() -> Vec<(&'static str, TokenBody, u8)> {
    vec![
        ("token-1.hex", golden_body(), 1),
        ("token-2-largest.hex", largest_body(), 2),
    ]
}

fn path(name: &str) -> String {
    format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn read_golden(name: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(path(name)).unwrap();
    hex::decode(text.split_whitespace().collect::<String>()).unwrap()
}

fn mint_seeded(body: &TokenBody, seed: u8) -> Vec<u8> {
    mint(
        body,
        &bank_key(),
        credit_key().public_key(),
        &mut seeded_rng(seed),
    )
    .unwrap()
}

#[test]
fn golden_tokens_open_to_their_bodies() {
    for (name, body, _) in goldens() {
        let bytes = read_golden(name);
        let opened = open(
            &bytes,
            &recipient_for(&body.credit_id),
            &keyring_for(&body.bank_id),
            body.valid_from,
            Some(&body.card_binding),
        );
        assert_eq!(opened, Ok(body), "{name}");
    }
}

#[test]
fn golden_tokens_re_encode_byte_for_byte() {
    for (name, body, _) in goldens() {
        let bytes = read_golden(name);
        let parsed = Envelope::parse(&bytes).unwrap();
        // The header as mint builds it from the body (issued = valid from, expires = valid until).
        assert_eq!(
            parsed.header_tlv,
            Forge::of(&body).header_tlv(),
            "{name}: header"
        );
        let sealed = sealed_tlv(parsed.encapsulated_key, parsed.ciphertext);
        let again = envelope(&[parsed.header_tlv, &sealed].concat(), parsed.signature);
        assert_eq!(again, bytes, "{name}: envelope");
        assert!(
            bytes.len() <= apdu_spec::token::MAX_TOKEN,
            "{name}: {} bytes",
            bytes.len()
        );
    }
}

#[test]
fn minting_again_with_the_same_generator_reproduces_the_goldens() {
    for (name, body, seed) in goldens() {
        assert_eq!(mint_seeded(&body, seed), read_golden(name), "{name}");
    }
}

#[test]
#[ignore = "writes tests/golden/*.hex; run only after a deliberate format change"]
fn regenerate() {
    for (name, body, seed) in goldens() {
        let hex_text = hex::encode(mint_seeded(&body, seed));
        let lines: Vec<&str> = hex_text
            .as_bytes()
            .chunks(64)
            .map(|line| core::str::from_utf8(line).unwrap())
            .collect();
        std::fs::write(path(name), lines.join("\n") + "\n").unwrap();
    }
}
