//! The card's P-256 operations — a key's public half, ECDH, ECDSA verification and signing — in one place, so the
//! arithmetic behind them is chosen at build time:
//!
//! - RustCrypto's `p256` (generic Rust, every target): the default, and what the host tests exercise;
//! - with the feature `p256-cm4`, on ARM only (the firmware's default): `p256-cm4`, a Rust port of Emil
//!   Lenngren's P256-Cortex-M4 assembly (vendored with one instruction fixed, `vendor/p256-cm4/LINKCARD.md`),
//!   18 to 53 times fewer instructions per operation on a Cortex-M4 (`docs/PERFORMANCE.md`). Keys, points and
//!   signatures stay RustCrypto's types; only the arithmetic moves.
//!
//! Both sign deterministically (RFC 6979, SHA-256, no added data), so a signature is the same whichever built it.

use p256::NonZeroScalar;
use p256::ecdsa::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

pub use crate::scp11::session::PublicKeyBytes;

/// A peer's public key that is not a point of the curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotOnCurve;

/// The public key of `secret`, as it travels.
pub fn public_key_of(secret: &NonZeroScalar) -> PublicKeyBytes {
    backend::public_key_of(secret)
}

/// ECDH: the x-coordinate of `secret · public`, once `public` is checked to be on the curve.
pub fn ecdh(secret: &NonZeroScalar, public: &PublicKeyBytes) -> Result<[u8; 32], NotOnCurve> {
    backend::ecdh(secret, public)
}

/// Whether `signature` is `key`'s ECDSA signature, with SHA-256, of `message`.
pub fn verify(key: &VerifyingKey, message: &[u8], signature: &Signature) -> bool {
    backend::verify(key, &Sha256::digest(message).into(), signature)
}

/// The ECDSA signature of the SHA-256 `digest` with `secret` (RFC 6979 nonce).
pub fn sign_digest(secret: &NonZeroScalar, digest: &[u8; 32]) -> Option<Signature> {
    backend::sign_digest(secret, digest)
}

#[cfg(not(all(feature = "p256-cm4", target_arch = "arm")))]
mod backend {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;

    use super::*;
    use crate::scp11::session::encode_public_key;

    pub(super) fn public_key_of(secret: &NonZeroScalar) -> PublicKeyBytes {
        encode_public_key(&p256::PublicKey::from_secret_scalar(secret))
    }

    pub(super) fn ecdh(
        secret: &NonZeroScalar,
        public: &PublicKeyBytes,
    ) -> Result<[u8; 32], NotOnCurve> {
        let public = p256::PublicKey::from_sec1_bytes(public).map_err(|_| NotOnCurve)?;
        let shared = p256::ecdh::diffie_hellman(secret, public.as_affine());
        let mut out = [0u8; 32];
        out.copy_from_slice(shared.raw_secret_bytes());
        Ok(out)
    }

    pub(super) fn verify(key: &VerifyingKey, digest: &[u8; 32], signature: &Signature) -> bool {
        key.verify_prehash(digest, signature).is_ok()
    }

    pub(super) fn sign_digest(secret: &NonZeroScalar, digest: &[u8; 32]) -> Option<Signature> {
        // Not `SigningKey`: making one computes its public key, a scalar multiplication signing never uses.
        let (signature, _) =
            ecdsa::hazmat::sign_prehashed_rfc6979::<p256::NistP256, Sha256>(secret, digest, &[]);
        Some(signature)
    }
}

#[cfg(all(feature = "p256-cm4", target_arch = "arm"))]
mod backend {
    use p256::elliptic_curve::Curve;
    use zeroize::Zeroize;

    use super::*;

    /// RFC 6979 gives a usable nonce at the first try but with probability about 2⁻³²; bounded all the same.
    const NONCE_TRIES: usize = 4;

    /// Big-endian bytes as the assembly's little-endian 32-bit words.
    fn words(bytes: &[u8; 32]) -> [u32; 8] {
        let mut words = [0u32; 8];
        for (word, chunk) in words.iter_mut().zip(bytes.rchunks_exact(4)) {
            let mut be = [0u8; 4];
            be.copy_from_slice(chunk);
            *word = u32::from_be_bytes(be);
        }
        words
    }

    /// The assembly's words as big-endian bytes.
    fn bytes(words: &[u32; 8]) -> [u8; 32] {
        let mut bytes = [0u8; 32];
        for (chunk, word) in bytes.rchunks_exact_mut(4).zip(words) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        bytes
    }

    fn secret_bytes(secret: &NonZeroScalar) -> [u8; 32] {
        p256::elliptic_curve::ff::PrimeField::to_repr(&**secret).into()
    }

    fn secret_words(secret: &NonZeroScalar) -> [u32; 8] {
        let mut repr = secret_bytes(secret);
        let words = words(&repr);
        repr.zeroize();
        words
    }

    fn point(public: &PublicKeyBytes) -> Result<([u32; 8], [u32; 8]), NotOnCurve> {
        let (mut x, mut y) = ([0u32; 8], [0u32; 8]);
        match p256_cm4::octet_string_to_point(&mut x, &mut y, public) {
            true => Ok((x, y)),
            false => Err(NotOnCurve),
        }
    }

    pub(super) fn public_key_of(secret: &NonZeroScalar) -> PublicKeyBytes {
        let mut d = secret_words(secret);
        let (mut x, mut y) = ([0u32; 8], [0u32; 8]);
        // A non-zero scalar is always in range.
        let in_range = p256_cm4::scalarmult_base(&mut x, &mut y, &d);
        debug_assert!(in_range);
        d.zeroize();
        let mut out: PublicKeyBytes = [0; 65];
        p256_cm4::point_to_octet_string_uncompressed(&mut out, &x, &y);
        out
    }

    pub(super) fn ecdh(
        secret: &NonZeroScalar,
        public: &PublicKeyBytes,
    ) -> Result<[u8; 32], NotOnCurve> {
        let (x, y) = point(public)?;
        let mut d = secret_words(secret);
        let mut shared = [0u8; 32];
        let on_curve = p256_cm4::ecdh_calc_shared_secret(&mut shared, &d, &x, &y);
        d.zeroize();
        match on_curve {
            true => Ok(shared),
            false => Err(NotOnCurve),
        }
    }

    pub(super) fn verify(key: &VerifyingKey, digest: &[u8; 32], signature: &Signature) -> bool {
        let public = crate::scp11::session::encode_public_key(&p256::PublicKey::from(key));
        let Ok((x, y)) = point(&public) else {
            return false;
        };
        let (r, s) = signature.split_bytes();
        let (r, s) = (words(&r.into()), words(&s.into()));
        p256_cm4::verify(&x, &y, digest, &r, &s)
    }

    pub(super) fn sign_digest(secret: &NonZeroScalar, digest: &[u8; 32]) -> Option<Signature> {
        let order = p256::NistP256::ORDER;
        let mut secret_be = secret_bytes(secret);
        let mut nonces =
            rfc6979::KGenerator::<Sha256, p256::U256>::new(&secret_be, digest, &[], &order);
        secret_be.zeroize();
        let mut d = secret_words(secret);
        let mut signature = None;
        for _ in 0..NONCE_TRIES {
            let mut k_bytes = p256::FieldBytes::default();
            nonces.fill_next_k(&mut k_bytes);
            let mut k = words(&k_bytes.into());
            k_bytes.zeroize();
            let (mut r, mut s) = ([0u32; 8], [0u32; 8]);
            let signed = p256_cm4::sign(&mut r, &mut s, digest, &d, &k);
            k.zeroize();
            if signed {
                signature = Signature::from_scalars(bytes(&r), bytes(&s)).ok();
                break;
            }
        }
        d.zeroize();
        signature
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6979 A.2.5 (P-256, SHA-256): the key, its public half and the signature of "sample".
    const SECRET: &str = "C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721";
    const PUBLIC: &str = "0460FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6\
                          7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299";
    const SAMPLE_SIGNATURE: &str = "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716\
                                    F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8";

    fn scalar(hex_text: &str) -> NonZeroScalar {
        let bytes: [u8; 32] = hex::decode(hex_text).unwrap().try_into().unwrap();
        Option::from(NonZeroScalar::from_repr(bytes.into())).unwrap()
    }

    #[test]
    fn the_rfc_6979_vector_holds() {
        let secret = scalar(SECRET);
        let public: PublicKeyBytes = hex::decode(PUBLIC).unwrap().try_into().unwrap();
        assert_eq!(public_key_of(&secret), public);
        let digest: [u8; 32] = Sha256::digest(b"sample").into();
        let signature = sign_digest(&secret, &digest).unwrap();
        assert_eq!(hex::encode_upper(signature.to_bytes()), SAMPLE_SIGNATURE);
        let key = VerifyingKey::from_sec1_bytes(&public).unwrap();
        assert!(verify(&key, b"sample", &signature));
        assert!(!verify(&key, b"test", &signature));
    }

    #[test]
    fn ecdh_agrees_both_ways_and_refuses_a_point_off_the_curve() {
        let (alice, bob) = (scalar(SECRET), scalar(&"7".repeat(64)));
        let (alice_public, bob_public) = (public_key_of(&alice), public_key_of(&bob));
        assert_eq!(ecdh(&alice, &bob_public), ecdh(&bob, &alice_public));
        let mut off_curve = bob_public;
        off_curve[64] ^= 1;
        assert_eq!(ecdh(&alice, &off_curve), Err(NotOnCurve));
    }
}
