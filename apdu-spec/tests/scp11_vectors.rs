//! SCP11 against the published transcripts of Samsung/OpenSCP-Java (see `data/scp11/*.txt` for the source
//! files and commit): with the OCE's keys pinned to the published values, the host's handshake command and
//! secured command, the receipt, and the card's secured response match byte for byte.

use std::collections::HashMap;

use apdu_spec::scp11::Variant;
use apdu_spec::scp11::session::{
    self, Handshake, SecureMessaging, SecurityLevel, encode_authenticate_response,
    parse_authenticate_response,
};

struct Transcript(HashMap<String, Vec<u8>>);

impl Transcript {
    fn load(text: &str) -> Self {
        let map = text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .map(|line| {
                let (name, value) = line.split_once(" = ").expect("name = hex");
                (name.to_owned(), hex::decode(value).expect("hex"))
            })
            .collect();
        Self(map)
    }
    fn get(&self, name: &str) -> &[u8] {
        self.0.get(name).unwrap_or_else(|| panic!("{name} missing"))
    }
    fn key(&self, name: &str) -> [u8; 65] {
        self.get(name).try_into().expect("65-byte public key")
    }
    fn scalar(&self, name: &str) -> p256::NonZeroScalar {
        let bytes: [u8; 32] = self.get(name).try_into().expect("32-byte scalar");
        p256::NonZeroScalar::from_repr(bytes.into()).expect("valid scalar")
    }
}

const SCP11A: &str = include_str!("data/scp11/openscp-scp11a-p256-aes128-s8.txt");
const SCP11C: &str = include_str!("data/scp11/openscp-scp11c-p256-aes128-s8.txt");

fn public_of(secret: &p256::NonZeroScalar) -> [u8; 65] {
    let point = p256::PublicKey::from_secret_scalar(secret);
    let encoded = p256::elliptic_curve::sec1::ToSec1Point::to_sec1_point(&point, false);
    encoded.as_bytes().try_into().expect("uncompressed point")
}

/// The APDU's data field: header, one-byte Lc, data, optional Le.
fn data_field(apdu: &[u8]) -> &[u8] {
    let lc = usize::from(apdu[4]);
    &apdu[5..5 + lc]
}

fn run(text: &str, variant: Variant) {
    let t = Transcript::load(text);
    let esk_oce = t.scalar("esk_oce");
    let sk_oce = t.scalar("sk_oce");
    assert_eq!(
        public_of(&esk_oce),
        t.key("epk_oce"),
        "eSK.OCE matches ePK.OCE"
    );

    // Host: the handshake command data, byte for byte (header 80 82 <KVN> <KID>, Le 00).
    let command = t.get("authenticate_command");
    let mut data = [0u8; 128];
    let len =
        Handshake::encode(variant, SecurityLevel::FULL, &t.key("epk_oce"), &mut data).unwrap();
    assert_eq!(
        &data[..len],
        data_field(command),
        "MUTUAL AUTHENTICATE data"
    );
    assert_eq!(&command[..2], &[0x80, 0x82]);
    assert_eq!(command.last(), Some(&0x00), "Le 00");

    // The card's side of the parse: what it reads back from the command.
    let handshake = Handshake::parse(data_field(command)).unwrap();
    assert_eq!(handshake.variant, variant);
    assert_eq!(handshake.level, SecurityLevel::FULL);
    assert_eq!(handshake.ephemeral_key, &t.key("epk_oce"));

    // Host: key agreement with the card's keys, then the receipt the card sent.
    let (epk_sd, card_receipt) =
        parse_authenticate_response(t.get("authenticate_response")).unwrap();
    let shared_ee = session::ecdh(&esk_oce, epk_sd).unwrap();
    let shared_ss = session::ecdh(&sk_oce, &t.key("pk_sd")).unwrap();
    let keys = session::derive(&shared_ee, &shared_ss, SecurityLevel::FULL);
    let receipt = session::receipt(&keys, data_field(command), epk_sd);
    assert_eq!(&receipt, card_receipt, "receipt");

    // Card: the same answer, byte for byte, from its ephemeral key and the receipt.
    let mut answer = [0u8; session::AUTHENTICATE_RESPONSE_LENGTH];
    let n = encode_authenticate_response(epk_sd, &receipt, &mut answer).unwrap();
    assert_eq!(&answer[..n], t.get("authenticate_response"));

    // Host: the secured GET STATUS, byte for byte.
    let plain = t.get("plain_command");
    let secured = t.get("secured_command");
    let mut host = SecureMessaging::new(&keys, &receipt, SecurityLevel::FULL);
    let header = [plain[0] | 0x04, plain[1], plain[2], plain[3]];
    let mut buf = [0u8; 64];
    let plain_data = data_field(plain);
    buf[..plain_data.len()].copy_from_slice(plain_data);
    let n = host
        .wrap_command(header, &mut buf, plain_data.len())
        .unwrap();
    assert_eq!(&header[..], &secured[..4]);
    assert_eq!(usize::from(secured[4]), n, "Lc");
    assert_eq!(&buf[..n], &secured[5..], "secured command data");

    // Card: opens the command, then secures the published plain answer into the published response.
    let mut card = SecureMessaging::new(&keys, &receipt, SecurityLevel::FULL);
    let mut received = secured[5..].to_vec();
    let n = card.unwrap_command(header, &mut received).unwrap();
    assert_eq!(&received[..n], plain_data, "card decrypts the command");
    let sw = u16::from_be_bytes(t.get("response_sw").try_into().unwrap());
    let plain_response = t.get("plain_response");
    let mut response = vec![0u8; plain_response.len() + session::OVERHEAD];
    response[..plain_response.len()].copy_from_slice(plain_response);
    let n = card
        .wrap_response(&mut response, plain_response.len(), sw)
        .unwrap();
    assert_eq!(
        &response[..n],
        t.get("secured_response"),
        "card's secured response"
    );

    // Host: opens the published response into the published plain data.
    let mut response = t.get("secured_response").to_vec();
    let n = host.unwrap_response(&mut response, sw).unwrap();
    assert_eq!(&response[..n], plain_response, "host decrypts the response");
}

#[test]
fn scp11a_p256_aes128_s8_matches_openscp_byte_for_byte() {
    run(SCP11A, Variant::A);
}

#[test]
fn scp11c_p256_aes128_s8_matches_openscp_byte_for_byte() {
    run(SCP11C, Variant::C);
}

/// The transcript's other pieces agree with each other: the certificate store holds the certificate whose key
/// is PK.SD, and the PSO chunks carry the OCE certificate.
#[test]
fn scp11a_transcript_is_consistent() {
    let t = Transcript::load(SCP11A);
    let store = t.get("certificate_store");
    let (store_tlv, rest) = apdu_spec::tlv::read(store).unwrap();
    assert!(rest.is_empty());
    assert_eq!(store_tlv.tag, 0xBF21);
    let pk_sd = t.get("pk_sd");
    assert!(
        store_tlv.value.windows(65).any(|w| w == pk_sd),
        "PK.SD in the card certificate"
    );
    let certificate: Vec<u8> = (0..3)
        .flat_map(|i| data_field(t.get(&format!("pso_command_{i}"))).to_vec())
        .collect();
    assert_eq!(certificate, t.get("oce_certificate_x509"));
    let pk_oce = public_of(&t.scalar("sk_oce"));
    assert!(
        certificate.windows(65).any(|w| w == pk_oce),
        "PK.OCE in the OCE certificate"
    );
}

const SCP03: &str = include_str!("data/scp11/openscp-scp03-aes128-s8.txt");

/// SCP03's session-key derivation (GPC Amd D §6.2.2, NIST SP 800-108 counter mode with AES-CMAC): only to reach
/// SCP03's published transcript, whose secure messaging is the one SCP11 sessions use.
fn scp03_kdf(key: &[u8], constant: u8, bits: u16, context: &[u8]) -> Vec<u8> {
    use cmac::{Cmac, Mac};
    let mut input = vec![0u8; 11];
    input.push(constant);
    input.push(0x00);
    input.extend_from_slice(&bits.to_be_bytes());
    input.push(0x01);
    input.extend_from_slice(context);
    let mut mac = <Cmac<aes::Aes128> as cmac::KeyInit>::new_from_slice(key).unwrap();
    mac.update(&input);
    mac.finalize().into_bytes()[..usize::from(bits / 8)].to_vec()
}

/// Three secured GET STATUS commands in a row (counters 1-3, MAC chaining from EXTERNAL AUTHENTICATE on) match
/// the published SCP03 transcript byte for byte, from both sides.
#[test]
fn secure_messaging_matches_openscp_scp03_over_several_commands() {
    let t = Transcript::load(SCP03);
    let update = t.get("initialize_update_response");
    let card_challenge = &update[13..21];
    let card_cryptogram = &update[21..29];
    let context = [t.get("host_challenge"), card_challenge].concat();
    let key = |constant| -> [u8; 16] {
        let key = if constant == 0x04 {
            t.get("static_enc")
        } else {
            t.get("static_mac")
        };
        scp03_kdf(key, constant, 128, &context).try_into().unwrap()
    };
    let keys = session::SessionKeys {
        receipt: [0; 16],
        enc: key(0x04),
        mac: key(0x06),
        rmac: key(0x07),
        dek: t.get("static_dek").try_into().unwrap(),
    };
    assert_eq!(
        scp03_kdf(&keys.mac, 0x00, 64, &context),
        card_cryptogram,
        "card cryptogram"
    );

    // EXTERNAL AUTHENTICATE: C-MAC only, chaining from zero.
    let external = t.get("external_authenticate_command");
    let mut authenticate = SecureMessaging::new(&keys, &[0; 16], SecurityLevel::MAC);
    let mut buf = [0u8; 64];
    buf[..8].copy_from_slice(&scp03_kdf(&keys.mac, 0x01, 64, &context));
    let n = authenticate
        .wrap_command(external[..4].try_into().unwrap(), &mut buf, 8)
        .unwrap();
    assert_eq!(&buf[..n], data_field(external), "EXTERNAL AUTHENTICATE");

    // Level 33: C-MAC, C-DEC, R-MAC, R-ENC, counter from 1, chaining from the EXTERNAL AUTHENTICATE MAC.
    let chaining = authenticate.chaining_value();
    let mut host = SecureMessaging::new(&keys, &chaining, SecurityLevel::FULL);
    let mut card = SecureMessaging::new(&keys, &chaining, SecurityLevel::FULL);
    for i in 0..3 {
        let plain = t.get(&format!("plain_command_{i}"));
        let secured = t.get(&format!("secured_command_{i}"));
        let header: [u8; 4] = secured[..4].try_into().unwrap();
        let mut buf = [0u8; 64];
        buf[..2].copy_from_slice(data_field(plain));
        let n = host.wrap_command(header, &mut buf, 2).unwrap();
        assert_eq!(&buf[..n], data_field(secured), "command {i}");

        let mut received = data_field(secured).to_vec();
        let n = card.unwrap_command(header, &mut received).unwrap();
        assert_eq!(&received[..n], data_field(plain), "card opens command {i}");

        let plain_response = t.get(&format!("plain_response_{i}"));
        let mut response = vec![0u8; plain_response.len() + session::OVERHEAD];
        response[..plain_response.len()].copy_from_slice(plain_response);
        let n = card
            .wrap_response(&mut response, plain_response.len(), 0x9000)
            .unwrap();
        let published = t.get(&format!("secured_response_{i}"));
        let mut opened = published.to_vec();
        if i < 2 {
            assert_eq!(&response[..n], published, "response {i}");
            let m = host.unwrap_response(&mut opened, 0x9000).unwrap();
            assert_eq!(&opened[..m], plain_response, "host opens response {i}");
        } else {
            // The emulated card padded this answer past the block boundary (its 11 bytes, then `80` and 20 zero
            // bytes: two blocks where ISO 7816-4 padding gives one). The first block matches ours, the R-MAC
            // verifies, and the strict unpadding refuses the extra block.
            assert_eq!(
                &response[..16],
                &published[..16],
                "response {i}, first block"
            );
            assert_eq!(published.len(), 32 + 8);
            assert_eq!(
                host.unwrap_response(&mut opened, 0x9000),
                Err(session::ScpError::BadPadding)
            );
        }
    }
}
