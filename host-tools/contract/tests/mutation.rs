//! Any changed byte of a bundle file is refused, never accepted and never a panic: every position with a few
//! chosen changes (a bit flip, the case bit, a space), and random values at random positions.

mod common;

use common::*;
use contract::Kind;
use proptest::prelude::*;
use std::sync::LazyLock;

/// One exchange for all cases: the offer, the acceptance, and both parties to import them.
static PARTIES: LazyLock<(Parties, Vec<u8>, Vec<u8>)> = LazyLock::new(|| {
    let parties = Parties::new();
    let (offer, acceptance) = (parties.offer(), parties.acceptance());
    (parties, offer, acceptance)
});

fn accepted(kind: Kind, bytes: &[u8]) -> bool {
    let (parties, _, _) = &*PARTIES;
    match kind {
        Kind::BankOffer => parties
            .credit
            .import_offer(bytes, &parties.bank_identity(), today())
            .is_ok(),
        Kind::CreditAcceptance => parties
            .bank
            .import_acceptance(bytes, &parties.credit_identity(), today())
            .is_ok(),
    }
}

fn bundle(kind: Kind) -> &'static [u8] {
    let (_, offer, acceptance) = &*PARTIES;
    match kind {
        Kind::BankOffer => offer,
        Kind::CreditAcceptance => acceptance,
    }
}

#[test]
fn the_unchanged_bundles_are_accepted() {
    for kind in [Kind::BankOffer, Kind::CreditAcceptance] {
        assert!(accepted(kind, bundle(kind)));
    }
}

#[test]
fn every_position_with_chosen_changes() {
    for kind in [Kind::BankOffer, Kind::CreditAcceptance] {
        let original = bundle(kind);
        for at in 0..original.len() {
            for change in [|b: u8| b ^ 0x01, |b: u8| b ^ 0x20, |_| b' ', |_| b'0'] {
                let mut changed = original.to_vec();
                changed[at] = change(changed[at]);
                if changed[at] != original[at] {
                    assert!(
                        !accepted(kind, &changed),
                        "{kind:?}: byte {at} changed, accepted"
                    );
                }
            }
        }
    }
}

proptest! {
    #[test]
    fn any_changed_byte_is_refused(offer in any::<bool>(), at in any::<prop::sample::Index>(), value in any::<u8>()) {
        let kind = if offer { Kind::BankOffer } else { Kind::CreditAcceptance };
        let original = bundle(kind);
        let at = at.index(original.len());
        prop_assume!(original[at] != value);
        let mut changed = original.to_vec();
        changed[at] = value;
        prop_assert!(!accepted(kind, &changed));
    }

    #[test]
    fn inserted_or_removed_bytes_are_refused(offer in any::<bool>(), at in any::<prop::sample::Index>(), value in any::<u8>(), insert in any::<bool>()) {
        let kind = if offer { Kind::BankOffer } else { Kind::CreditAcceptance };
        let mut changed = bundle(kind).to_vec();
        let at = at.index(changed.len());
        if insert { changed.insert(at, value) } else { changed.remove(at); }
        prop_assert!(!accepted(kind, &changed));
    }
}
