//! Properties: `open(mint(x)) == x` over random bodies within the bounds, and no changed or cut byte of a
//! minted token ever opens (or panics): each is refused with an error.

mod common;

use common::*;
use proptest::prelude::*;
use token::{Date, MAX_BANK_ACCOUNT, MAX_USER_ID, TokenBody, mint, open};

fn any_date() -> impl Strategy<Value = Date> {
    (2000u16..=2099, 1u8..=12, 1u8..=28).prop_map(|(y, m, d)| date(y, m, d))
}

fn party_id() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 1..=16)
}

fn printable(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[ -~]{{1,{max}}}")).unwrap()
}

fn body() -> impl Strategy<Value = TokenBody> {
    (
        (
            proptest::string::string_regex("\\PC{1,12}").unwrap(),
            printable(MAX_USER_ID),
        ),
        (any::<u64>(), 1u16..=999, any_date(), any::<[u8; 16]>()),
        (any_date(), 0u16..=400, party_id(), party_id()),
        (
            printable(MAX_BANK_ACCOUNT),
            proptest::string::string_regex("[0-9]{12,19}").unwrap(),
        ),
        any::<[u8; 32]>(),
    )
        .prop_map(
            |(
                (user_name, user_id),
                (sum, currency, deposit_date, token_id),
                (from, days, bank_id, credit_id),
                (bank_account, pan),
                card_binding,
            )| {
                let valid_until = add_days(from, days);
                TokenBody {
                    user_name,
                    user_id,
                    sum,
                    currency,
                    deposit_date,
                    token_id,
                    valid_from: from,
                    valid_until,
                    bank_id,
                    bank_account,
                    credit_id,
                    pan,
                    card_binding,
                }
            },
        )
        .prop_filter("user names of at most 48 bytes", |b| {
            b.user_name.len() <= token::MAX_USER_NAME
        })
}

/// `date` moved on by up to `days` days, staying a real date (coarsely: by months of 28 days).
fn add_days(date_from: Date, days: u16) -> Date {
    let (mut y, mut m, d) = date_from.ymd().unwrap();
    for _ in 0..days / 28 {
        m += 1;
        if m > 12 {
            m = 1;
            y += 1;
        }
    }
    date(y, m, d)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn open_of_mint_is_the_body(body in body(), seed in any::<u8>()) {
        let bytes = mint(&body, &bank_key(), credit_key().public_key(), &mut seeded_rng(seed)).unwrap();
        prop_assert!(bytes.len() <= apdu_spec::token::MAX_TOKEN);
        let opened = open(
            &bytes,
            &recipient_for(&body.credit_id),
            &keyring_for(&body.bank_id),
            body.valid_from,
            Some(&body.card_binding),
        );
        prop_assert_eq!(opened, Ok(body));
    }
}

#[test]
fn every_changed_or_cut_byte_is_refused_with_an_error() {
    let body = golden_body();
    let bytes = mint(
        &body,
        &bank_key(),
        credit_key().public_key(),
        &mut seeded_rng(7),
    )
    .unwrap();
    let try_open =
        |candidate: &[u8]| open(candidate, &recipient(), &keyring(), body.valid_from, None);
    assert!(try_open(&bytes).is_ok());
    for at in 0..bytes.len() {
        for flip in [0x01, 0x80, 0xFF] {
            let mut changed = bytes.clone();
            changed[at] ^= flip;
            assert!(
                try_open(&changed).is_err(),
                "byte {at} ^ {flip:#04x} opened"
            );
        }
    }
    for len in 0..bytes.len() {
        assert!(try_open(&bytes[..len]).is_err(), "cut at {len} opened");
    }
}
