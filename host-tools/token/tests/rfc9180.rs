//! RFC 9180 Appendix A.3 (DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-128-GCM), A.3.1 base mode: the `hpke`
//! crate as the token uses it reproduces the published key derivation, encapsulation and the first two
//! encryptions byte for byte (values from RFC 9180 §A.3.1 and §A.3.1.1).

use core::convert::Infallible;

use hpke::rand_core::{TryCryptoRng, TryRng};
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use token::{AEAD_ID, CreditPrivateKey, KDF_ID, KEM_ID};

type Kem = hpke::kem::DhP256HkdfSha256;
type Aead = hpke::aead::AesGcm128;
type Kdf = hpke::kdf::HkdfSha256;

const INFO: &str = "4f6465206f6e2061204772656369616e2055726e";
const IKM_E: &str = "4270e54ffd08d79d5928020af4686d8f6b7d35dbe470265f1f5aa22816ce860e";
const PK_EM: &str = "04a92719c6195d5085104f469a8b9814d5838ff72b60501e2c4466e5e67b325ac98536d7b61a1af4b78e5b7f951c0900be863c403ce65c9bfcb9382657222d18c4";
const SK_EM: &str = "4995788ef4b9d6132b249ce59a77281493eb39af373d236a1fe415cb0c2d7beb";
const IKM_R: &str = "668b37171f1072f3cf12ea8a236a45df23fc13b82af3609ad1e354f6ef817550";
const PK_RM: &str = "04fe8c19ce0905191ebc298a9245792531f26f0cece2460639e8bc39cb7f706a826a779b4cf969b8a0e539c7f62fb3d30ad6aa8f80e30f1d128aafd68a2ce72ea0";
const SK_RM: &str = "f3ce7fdae57e1a310d87f1ebbde6f328be0a99cdbcadf4d6589cf29de4b8ffd2";
const PT: &str = "4265617574792069732074727574682c20747275746820626561757479";
/// sequence number 0: aad "Count-0", and 1: aad "Count-1" (§A.3.1.1).
const ENCRYPTIONS: [(&str, &str); 2] = [
    (
        "436f756e742d30",
        "5ad590bb8baa577f8619db35a36311226a896e7342a6d836d8b7bcd2f20b6c7f9076ac232e3ab2523f39513434",
    ),
    (
        "436f756e742d31",
        "fa6f037b47fc21826b610172ca9637e82d6e5801eb31cbd3748271affd4ecb06646e0329cbdf3c3cd655b28e82",
    ),
];

fn bytes(hex_text: &str) -> Vec<u8> {
    hex::decode(hex_text).unwrap()
}

/// Hands out fixed bytes: the published ikmE, so the ephemeral key is the RFC's (hpke derives it with
/// DeriveKeyPair from 32 random bytes, exactly as §4.1 GenerateKeyPair via DeriveKeyPair(random(Nsk))).
struct FixedBytes(Vec<u8>);

impl TryRng for FixedBytes {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        unreachable!("hpke asks only for bytes")
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        unreachable!("hpke asks only for bytes")
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        assert!(
            dst.len() <= self.0.len(),
            "more randomness asked than the vector gives"
        );
        let rest = self.0.split_off(dst.len());
        dst.copy_from_slice(&self.0);
        self.0 = rest;
        Ok(())
    }
}
impl TryCryptoRng for FixedBytes {}

#[test]
fn the_suite_ids_are_the_rfc_ones() {
    // §7.1-7.3: DHKEM(P-256, HKDF-SHA256) 0x0010, HKDF-SHA256 0x0001, AES-128-GCM 0x0001.
    assert_eq!((KEM_ID, KDF_ID, AEAD_ID), (0x0010, 0x0001, 0x0001));
    assert_eq!(<Kem as hpke::Kem>::KEM_ID, KEM_ID);
}

#[test]
fn derive_keypair_reproduces_a_3_1_keys() {
    let (sk_e, pk_e) = Kem::derive_keypair(&bytes(IKM_E));
    assert_eq!(sk_e.to_bytes().as_slice(), bytes(SK_EM));
    assert_eq!(pk_e.to_bytes().as_slice(), bytes(PK_EM));
    let (sk_r, pk_r) = Kem::derive_keypair(&bytes(IKM_R));
    assert_eq!(sk_r.to_bytes().as_slice(), bytes(SK_RM));
    assert_eq!(pk_r.to_bytes().as_slice(), bytes(PK_RM));
    // The crate's own key type agrees.
    let credit = CreditPrivateKey::derive(&bytes(IKM_R));
    assert_eq!(credit.public_key().to_sec1().as_slice(), bytes(PK_RM));
}

#[test]
fn base_mode_seal_reproduces_a_3_1_encapsulation_and_ciphertexts() {
    let pk_r = <Kem as hpke::Kem>::PublicKey::from_bytes(&bytes(PK_RM)).unwrap();
    let (enc, mut sender) = hpke::setup_sender_with_rng::<Aead, Kdf, Kem>(
        &OpModeS::Base,
        &pk_r,
        &bytes(INFO),
        &mut FixedBytes(bytes(IKM_E)),
    )
    .unwrap();
    assert_eq!(enc.to_bytes().as_slice(), bytes(PK_EM), "enc = pkEm");
    for (aad, ct) in ENCRYPTIONS {
        assert_eq!(sender.seal(&bytes(PT), &bytes(aad)).unwrap(), bytes(ct));
    }
}

#[test]
fn base_mode_open_recovers_the_a_3_1_plaintexts() {
    let sk_r = <Kem as hpke::Kem>::PrivateKey::from_bytes(&bytes(SK_RM)).unwrap();
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&bytes(PK_EM)).unwrap();
    let mut receiver =
        hpke::setup_receiver::<Aead, Kdf, Kem>(&OpModeR::Base, &sk_r, &enc, &bytes(INFO)).unwrap();
    for (aad, ct) in ENCRYPTIONS {
        assert_eq!(receiver.open(&bytes(ct), &bytes(aad)).unwrap(), bytes(PT));
    }
}
