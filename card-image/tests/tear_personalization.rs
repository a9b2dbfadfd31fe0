//! Re-keying a security domain (STORE DATA of a new static key, then of the chain that certifies it): key and
//! chain change in one store transaction. With the power cut at every write point, the rebooted card hands out
//! either the whole old chain or the whole new one (GET DATA BF21), never a mix, and its key is the one its
//! chain certifies (an SCP11b handshake against the chain's leaf key succeeds).

use apdu_spec::scp11::cert::{CERTIFICATE_SIGNING, CertificateBuilder, Date, KEY_AGREEMENT};
use card_image::LinkcardImage;
use card_os::Card;
use card_os::layout::CardNvm;
use card_os::nvm::{Tear, TearingNvm};

type TornCard = Card<LinkcardImage, TearingNvm<CardNvm>>;

const SELECT_ISD: [u8; 5] = [0x00, 0xA4, 0x04, 0x00, 0x00];
const GET_CERTIFICATES: [u8; 5] = [0x00, 0xCA, 0xBF, 0x21, 0x00];

fn send(card: &mut TornCard, apdu: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; card_os::RESPONSE_BUFFER + 2];
    let n = card.transmit(apdu, &mut out);
    out.truncate(n);
    out
}

/// STORE DATA with one data object, as a command chain of short APDUs (the card manager takes no extended
/// length).
fn store_data(tag: u16, value: &[u8]) -> Vec<Vec<u8>> {
    let mut object = tag.to_be_bytes().to_vec();
    if value.len() > 127 {
        object.extend([0x82, (value.len() >> 8) as u8, value.len() as u8]);
    } else {
        object.push(value.len() as u8);
    }
    object.extend_from_slice(value);
    let pieces: Vec<&[u8]> = object.chunks(255).collect();
    let last = pieces.len() - 1;
    pieces
        .iter()
        .enumerate()
        .map(|(i, piece)| {
            let cla = if i == last { 0x80 } else { 0x90 };
            let mut apdu = vec![cla, 0xE2, 0x80, 0x00, piece.len() as u8];
            apdu.extend_from_slice(piece);
            apdu
        })
        .collect()
}

/// Sends a chain; returns the last answer (the others must be 9000).
fn send_all(card: &mut TornCard, apdus: &[Vec<u8>]) -> Vec<u8> {
    let (last, first) = apdus.split_last().unwrap();
    for apdu in first {
        assert_eq!(send(card, apdu), [0x90, 0x00], "chained fragment");
    }
    send(card, last)
}

fn certificate(
    subject: u8,
    usage: u16,
    key: &p256::PublicKey,
    signer: &p256::ecdsa::SigningKey,
) -> Vec<u8> {
    CertificateBuilder {
        serial: vec![subject],
        ca_kloc_id: vec![0xCA],
        subject_id: vec![subject; 20],
        key_usage: usage,
        effective: Date::from_ymd(2026, 11, 24),
        expiration: Date::from_ymd(2030, 1, 1).unwrap(),
        role: None,
        public_key: *key,
    }
    .sign(signer)
    .unwrap()
}

struct Chains {
    old_key: [u8; 32],
    new_key: [u8; 32],
    old: Vec<u8>,
    new: Vec<u8>,
}

fn chains() -> Chains {
    let (old_key, new_key) = ([0x42u8; 32], [0x43u8; 32]);
    let old_secret = p256::SecretKey::from_slice(&old_key).unwrap();
    let new_secret = p256::SecretKey::from_slice(&new_key).unwrap();
    let ca = p256::ecdsa::SigningKey::from_slice(&[0x17; 32]).unwrap();
    let intermediate = p256::SecretKey::from_slice(&[0x23; 32]).unwrap();
    let old = certificate(1, KEY_AGREEMENT, &old_secret.public_key(), &ca);
    let new = [
        certificate(2, CERTIFICATE_SIGNING, &intermediate.public_key(), &ca),
        certificate(
            3,
            KEY_AGREEMENT,
            &new_secret.public_key(),
            &(&intermediate).into(),
        ),
    ]
    .concat();
    Chains {
        old_key,
        new_key,
        old,
        new,
    }
}

/// A card personalized with the old chain (writes counted from here on).
fn set_up(card: &mut TornCard, chains: &Chains) {
    card.power_on();
    assert_eq!(send(card, &SELECT_ISD)[..2], [0x6F, 0x10]);
    assert_eq!(
        send_all(card, &store_data(0xDF20, &chains.old_key)),
        [0x90, 0x00]
    );
    assert_eq!(
        send_all(card, &store_data(0xBF21, &chains.old)),
        [0x90, 0x00]
    );
}

/// The certificates the card hands out (GET DATA BF21, then GET RESPONSE while it answers 61xx).
fn read_certificates(card: &mut TornCard) -> Vec<u8> {
    let mut answer = send(card, &GET_CERTIFICATES);
    let mut data = Vec::new();
    loop {
        let (body, sw) = answer.split_at(answer.len() - 2);
        data.extend_from_slice(body);
        match sw {
            [0x61, _] => answer = send(card, &[0x00, 0xC0, 0x00, 0x00, 0x00]),
            [0x90, 0x00] => break,
            other => panic!("GET DATA BF21 answered {other:02X?}"),
        }
    }
    let (store, rest) = apdu_spec::tlv::read(&data).unwrap();
    assert!(rest.is_empty());
    store.value.to_vec()
}

/// The certificates a card rebooted on `memory` hands out, after checking that its key is their leaf's: an
/// SCP11b handshake computed against the leaf key must give the card's receipt.
fn certificates(memory: CardNvm) -> Vec<u8> {
    use apdu_spec::scp11::Variant;
    use apdu_spec::scp11::cert::Certificate;
    use apdu_spec::scp11::session::{self, Handshake, SecurityLevel};
    use p256::elliptic_curve::sec1::ToSec1Point;

    let mut card = TornCard::with_nvm(TearingNvm::new(memory, None, Tear::Half));
    card.seed_random([7; 32]);
    card.power_on();
    send(&mut card, &SELECT_ISD);
    let chain = read_certificates(&mut card);
    let mut rest = &chain[..];
    let mut leaf = None;
    while !rest.is_empty() {
        let (certificate, after) = Certificate::parse(rest).unwrap();
        leaf = Some(*certificate.public_key_bytes());
        rest = after;
    }
    let leaf = leaf.unwrap();
    let ephemeral = p256::NonZeroScalar::from_repr([0x55; 32].into()).unwrap();
    let public: [u8; 65] = p256::PublicKey::from_secret_scalar(&ephemeral)
        .to_sec1_point(false)
        .as_bytes()
        .try_into()
        .unwrap();
    let mut data = [0u8; 96];
    let n = Handshake::encode(Variant::B, SecurityLevel::MAC, &public, &mut data).unwrap();
    let mut internal = vec![0x80, 0x88, 0x03, 0x13, n as u8];
    internal.extend_from_slice(&data[..n]);
    internal.push(0x00);
    let answer = send(&mut card, &internal);
    assert_eq!(
        answer[answer.len() - 2..],
        [0x90, 0x00],
        "INTERNAL AUTHENTICATE"
    );
    let (card_ephemeral, receipt) =
        session::parse_authenticate_response(&answer[..answer.len() - 2]).unwrap();
    let keys = session::derive(
        &session::ecdh(&ephemeral, card_ephemeral).unwrap(),
        &session::ecdh(&ephemeral, &leaf).unwrap(),
        SecurityLevel::MAC,
    );
    assert_eq!(
        &session::receipt(&keys, &data[..n], card_ephemeral),
        receipt,
        "the card's key is the one its chain certifies"
    );
    chain
}

#[test]
fn rekeying_torn_anywhere_leaves_the_old_key_and_chain_or_the_new_ones() {
    let chains = chains();
    // The new key, then the chain that certifies it.
    let rekey = store_data(0xDF20, &chains.new_key);
    let replace = store_data(0xBF21, &chains.new);

    let mut counting = TornCard::with_nvm(TearingNvm::new(CardNvm::default(), None, Tear::Half));
    set_up(&mut counting, &chains);
    let setup_writes = counting.into_nvm().unwrap().writes();
    let mut complete = TornCard::with_nvm(TearingNvm::new(CardNvm::default(), None, Tear::Half));
    set_up(&mut complete, &chains);
    assert_eq!(send_all(&mut complete, &rekey), [0x90, 0x00]);
    assert_eq!(send_all(&mut complete, &replace), [0x90, 0x00]);
    assert_eq!(read_certificates(&mut complete), chains.new);
    let total_writes = complete.into_nvm().unwrap().writes();
    assert!(
        total_writes > setup_writes + 2,
        "the replacement goes through the journal"
    );

    let (mut old, mut new) = (0, 0);
    for tear in [Tear::Half, Tear::Garbage] {
        for at in setup_writes..total_writes {
            let mut card = TornCard::with_nvm(TearingNvm::new(CardNvm::default(), Some(at), tear));
            set_up(&mut card, &chains);
            // Whichever command the tear hits reports it; the card is gone after that.
            let answers = [send_all(&mut card, &rekey), send_all(&mut card, &replace)];
            assert!(
                answers.contains(&vec![0x65, 0x81]),
                "{tear:?} at write {at}: no memory failure reported ({answers:02X?})"
            );
            let found = certificates(card.into_nvm().unwrap().into_inner());
            if found == chains.old {
                old += 1;
            } else {
                assert_eq!(
                    found, chains.new,
                    "{tear:?} at write {at}: a mix of old and new"
                );
                new += 1;
            }
        }
    }
    assert!(old > 0, "early tears keep the old chain");
    println!(
        "re-keying (key + chain): {} write points, {old} torn to old, {new} to new",
        total_writes - setup_writes
    );
}
