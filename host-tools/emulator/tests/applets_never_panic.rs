//! Neither side panics and every answer has a plausible shape, on one card issued with both payment applets
//! personalized (the credit applet with a cardholder PIN and the bank applet to share with), driven through live
//! SCP11 sessions so that the applets' own parsers and logic run with a security context.
//!
//! A sequence (up to 30 steps) mixes: SCP11a sessions of the four OCE roles (issuer, bank-atm, credit-pos,
//! token-delivery) and SCP11b to either applet at every level; typed bank and credit commands (VERIFY included)
//! with random, mangled or truncated fields, tokens minted by the `token` crate (for this card, another bank,
//! another credit company, another card), mutated ones and random blobs wrapped as tokens, sent through the
//! session; random commands through the session; raw bytes beside it; SELECT of either applet or the card
//! manager; power cycles. The checks (`emulator::testing`): every response on the wire and every plain response
//! out of a session ends with a plausible status word and carries data only with 9000/61xx/62xx/63xx; 6982 ends
//! the host's session; an applet command in an undisturbed session never fails on the card's answer; a power
//! cycle ends the session. After each sequence: a credit-POS PRESENT answers an error or a well-formed
//! presentation, and a bank-ATM LIST TOKENS answers at most 8 distinct clear headers of this bank. Nothing here
//! asserts what VERIFY or PRESENT decide: the PIN and Fig. 14 behaviour may change under it.
//!
//! 512 sequences per run (`PROPTEST_CASES` asks for another number); a failing case's seed is saved in
//! `applets_never_panic.proptest-regressions` next to this file and replayed first. The card is issued once per
//! test binary; each sequence starts a fresh card on a copy of its memory.

use std::sync::OnceLock;

use apdu_spec::bank::{self, BankCommand};
use apdu_spec::builder::Command;
use apdu_spec::credit::{self, CardholderPin, Confirmation, CreditCommand, Presentation};
use apdu_spec::scp11::cert::Role;
use apdu_spec::scp11::session::SecurityLevel;
use apdu_spec::token::{Envelope, TOKEN_ID_LENGTH};
use emulator::testing::{self, Harness, IssuedCard, Op, Opener, Target, check_shape};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::FileFailurePersistence;

fn issued() -> &'static IssuedCard {
    static ISSUED: OnceLock<IssuedCard> = OnceLock::new();
    ISSUED.get_or_init(testing::issue_payment_card)
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..=max)
}

fn real_token() -> impl Strategy<Value = Vec<u8>> {
    (0..issued().tokens.len()).prop_map(|i| issued().tokens[i].clone())
}

/// Real tokens, the same with one byte changed, random blobs in a token envelope, random blobs.
fn token() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => real_token(),
        2 => (real_token(), any::<prop::sample::Index>(), 1..=255u8).prop_map(|(mut t, at, x)| {
            let at = at.index(t.len());
            t[at] ^= x;
            t
        }),
        1 => (bytes(700), prop::array::uniform32(any::<u8>()))
            .prop_map(|(signed, half)| apdu_spec::token::envelope(&signed, &[half, half].concat().try_into().unwrap())),
        1 => bytes(700),
    ]
}

fn token_id() -> impl Strategy<Value = [u8; TOKEN_ID_LENGTH]> {
    prop_oneof![
        real_token().prop_map(|t| *Envelope::parse(&t).unwrap().header.token_id),
        prop::array::uniform16(any::<u8>()),
    ]
}

fn encode(command: Command) -> Vec<u8> {
    command.to_extended().unwrap()
}

fn bank_command() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        (bytes(20), bytes(40), bytes(20), bytes(40), bytes(20)).prop_map(|(b, a, u, n, c)| {
            encode(
                BankCommand::Personalize(bank::Personalization {
                    bank_id: &b,
                    account: &a,
                    user_id: &u,
                    user_name: &n,
                    credit_applet: &c,
                })
                .to_command(),
            )
        }),
        Just(encode(BankCommand::ReadAccount.to_command())),
        token().prop_map(|t| encode(BankCommand::StoreToken(&t).to_command())),
        Just(encode(BankCommand::ListTokens.to_command())),
        token_id().prop_map(|id| encode(BankCommand::DeleteToken(&id).to_command())),
    ]
    .boxed()
}

/// PERSONALIZE of the credit applet with random fields (it is personalized already).
fn credit_personalize() -> impl Strategy<Value = Vec<u8>> {
    let pin = prop::option::of((bytes(14), any::<u8>()));
    (
        bytes(20),
        bytes(12),
        any::<[u8; 2]>(),
        bytes(40),
        any::<u32>(),
        bytes(16),
        pin,
    )
        .prop_map(
            |(credit_id, pan, expiry, holder, atc_limit, bank_applet, pin)| {
                let pin = pin.as_ref().map(|(digits, try_limit)| CardholderPin {
                    digits,
                    try_limit: *try_limit,
                });
                let personalization = credit::Personalization {
                    credit_id: &credit_id,
                    pan: &pan,
                    expiry: &expiry,
                    cardholder_id: &holder,
                    status: expiry[0],
                    atc_limit,
                    signing_key: &[0x11; 32],
                    bank_applet: (!bank_applet.is_empty()).then_some(&bank_applet[..]),
                    pin,
                };
                encode(CreditCommand::Personalize(personalization).to_command())
            },
        )
}

fn credit_command() -> BoxedStrategy<Vec<u8>> {
    let digits = prop_oneof![
        Just(testing::PIN.to_vec()),
        prop::collection::vec(b'0'..=b'9', 4..=12),
        bytes(16),
    ];
    prop_oneof![
        credit_personalize(),
        token().prop_map(|t| encode(CreditCommand::StoreToken(&t).to_command())),
        (any::<[u8; 16]>(), any::<u64>(), any::<u16>()).prop_map(|(nonce, amount, currency)| {
            let presentation = Presentation {
                nonce: &nonce,
                amount,
                currency,
            };
            encode(CreditCommand::Present(presentation).to_command())
        }),
        (
            prop_oneof![0..4u32, any::<u32>()],
            prop::collection::vec(token_id(), 0..=credit::MAX_CONFIRM)
        )
            .prop_map(|(atc, ids)| {
                let ids = ids.concat();
                encode(CreditCommand::Confirm(Confirmation::new(atc, &ids).unwrap()).to_command())
            }),
        prop::option::of(digits)
            .prop_map(|digits| encode(CreditCommand::Verify(digits.as_deref()).to_command())),
    ]
    .boxed()
}

/// Any header (the applets' CLA and INS more often), any data.
fn random_command() -> impl Strategy<Value = Vec<u8>> {
    let cla = prop_oneof![Just(0x80u8), Just(0x00), any::<u8>()];
    let ins = prop_oneof![
        select(vec![0x20u8, 0x22, 0x24, 0x26, 0x28, 0x30, 0x34, 0x36, 0x38]),
        any::<u8>()
    ];
    let p1p2 = prop_oneof![Just((0u8, 0u8)), Just((0, 0x80)), any::<(u8, u8)>()];
    (cla, ins, p1p2, bytes(300), prop::option::of(1..=65536usize)).prop_map(
        |(cla, ins, (p1, p2), data, ne)| {
            let command = Command::new(cla, ins, p1, p2).with_data(data);
            encode(match ne {
                Some(ne) => command.with_ne(ne),
                None => command,
            })
        },
    )
}

/// A command (`commands`, or a random one), sometimes with one byte changed or cut short.
fn command(commands: BoxedStrategy<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let command = prop_oneof![8 => commands, 1 => random_command()];
    let mangle = prop_oneof![
        6 => Just(None),
        1 => (any::<prop::sample::Index>(), 1..=255u8).prop_map(|(at, x)| Some((at, Some(x)))),
        1 => any::<prop::sample::Index>().prop_map(|at| Some((at, None))),
    ];
    (command, mangle).prop_map(|(mut apdu, mangle)| {
        match mangle {
            Some((at, Some(x))) => {
                let at = at.index(apdu.len());
                apdu[at] ^= x;
            }
            Some((at, None)) => apdu.truncate(at.index(apdu.len())),
            None => {}
        }
        apdu
    })
}

fn secured(commands: BoxedStrategy<Vec<u8>>) -> impl Strategy<Value = Op> {
    (command(commands), any::<bool>()).prop_map(|(apdu, extended)| Op::Secured { apdu, extended })
}

/// A session and what goes through it: mostly the commands of the applet it reaches, mostly opened by a role
/// that may send some of them, at a level that allows them.
fn session() -> impl Strategy<Value = Vec<Op>> {
    use Opener::*;
    let level =
        prop_oneof![3 => Just(SecurityLevel::FULL), 1 => select(SecurityLevel::ALL.to_vec())];
    let bank = prop_oneof![6 => Just(BankAtm), 1 => select(Opener::ALL.to_vec())];
    let credit = prop_oneof![3 => Just(CreditPos), 3 => Just(TokenDelivery), 1 => select(Opener::ALL.to_vec())];
    let commands = |target| match target {
        Target::Bank => prop_oneof![6 => bank_command(), 1 => credit_command()].boxed(),
        _ => prop_oneof![6 => credit_command(), 1 => bank_command()].boxed(),
    };
    prop_oneof![
        (Just(Target::Bank), bank.boxed()),
        (Just(Target::Credit), credit.boxed()),
    ]
    .prop_flat_map(move |(target, opener)| {
        let open = level.clone().prop_map(move |level| Op::Open {
            target,
            opener,
            level,
        });
        (
            open,
            prop::collection::vec(secured(commands(target)), 1..=6),
        )
    })
    .prop_map(|(open, commands)| [vec![open], commands].concat())
}

/// One step outside a session block.
fn step() -> impl Strategy<Value = Op> {
    let applet = select(vec![Target::Bank, Target::Credit]);
    prop_oneof![
        1 => (applet, select(Opener::ALL.to_vec()), select(SecurityLevel::ALL.to_vec()))
            .prop_map(|(target, opener, level)| Op::Open { target, opener, level }),
        2 => secured(prop_oneof![bank_command(), credit_command()].boxed()),
        1 => bytes(300).prop_map(Op::Raw),
        1 => select(Target::ALL.to_vec()).prop_map(Op::Select),
        1 => Just(Op::PowerCycle),
    ]
}

/// Up to 30 steps: session blocks and single steps.
fn sequence() -> impl Strategy<Value = Vec<Op>> {
    let part = prop_oneof![3 => session(), 1 => step().prop_map(|op| vec![op])];
    prop::collection::vec(part, 1..=8).prop_map(|parts| {
        let mut ops = parts.concat();
        ops.truncate(30);
        ops
    })
}

fn config() -> ProptestConfig {
    // Each sequence opens a few SCP11 sessions (ECC on both sides): 512 take about 8 s in debug on 2 cores.
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_sequences_through_live_sessions_get_plausible_answers(ops in sequence()) {
        let mut harness = Harness::new(issued());
        for op in &ops {
            harness.run(op).map_err(|v| TestCaseError::fail(format!("{op:02X?}: {v}")))?;
        }
        harness.check_invariants().map_err(|v| TestCaseError::fail(format!("after the sequence: {v}")))?;
    }
}

fn open(harness: &mut Harness<'_>, target: Target, opener: Opener) {
    let op = Op::Open {
        target,
        opener,
        level: SecurityLevel::FULL,
    };
    assert_eq!(
        harness.run(&op).unwrap(),
        Some(0x9000),
        "{opener:?} to {target:?}"
    );
}

/// The harness reaches the applets' logic in live sessions (what the random sequences build on), and its checks
/// can fail.
#[test]
fn the_harness_reaches_both_personalized_applets_through_live_sessions() {
    let tokens = &issued().tokens;
    let store = |target, i: usize| {
        let token = &tokens[i];
        encode(match target {
            Target::Bank => BankCommand::StoreToken(token).to_command(),
            _ => CreditCommand::StoreToken(token).to_command(),
        })
    };
    let mut harness = Harness::new(issued());
    // Tokens 0 and 1 are for this card, 2 of another bank, 3 of another credit company (`IssuedCard::tokens`).
    // The last: the wrong role answers 6982, and the host's session ends with the card's.
    let steps = [
        (
            Target::Bank,
            Opener::BankAtm,
            Role::BankAtm,
            [(0, 0x9000), (2, 0x6A80)],
        ),
        (
            Target::Credit,
            Opener::TokenDelivery,
            Role::TokenDelivery,
            [(1, 0x9000), (3, 0x6A80)],
        ),
        (
            Target::Credit,
            Opener::CreditPos,
            Role::CreditPos,
            [(4, 0x6982), (4, 0x6982)],
        ),
    ];
    for (target, opener, role, stores) in steps {
        open(&mut harness, target, opener);
        assert_eq!(harness.session().unwrap().role, Some(role));
        for (i, sw) in stores {
            let op = Op::Secured {
                apdu: store(target, i),
                extended: false,
            };
            assert_eq!(harness.run(&op).unwrap(), Some(sw), "{opener:?}: token {i}");
        }
    }
    assert_eq!(harness.session(), None);
    open(&mut harness, Target::Bank, Opener::Issuer);
    assert_eq!(harness.run(&Op::PowerCycle).unwrap(), None);
    assert_eq!(harness.session(), None);
    harness.check_invariants().unwrap();
    // The shape check refuses what a card must never answer.
    for bad in [
        &[0x90][..],
        &[0x01, 0x6A, 0x80],
        &[0x12, 0x34],
        &[0x90, 0x01],
    ] {
        assert!(check_shape(bad).is_err(), "{bad:02X?}");
    }
    for good in [
        &[0x90, 0x00][..],
        &[0x01, 0x90, 0x00],
        &[0x01, 0x63, 0xC2],
        &[0x6A, 0x82],
    ] {
        assert!(check_shape(good).is_ok(), "{good:02X?}");
    }
}
