//! The key files are what OpenSSL reads and writes, checked with the `openssl` command: it reads every private
//! and public key an organisation has, derives the same public keys and fingerprints, and keys it made load here
//! (and work through a whole exchange). Skipped, saying so, where `openssl` is not installed.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use contract::{BankKeys, CreditKeys, Fingerprint};
use sha2::{Digest, Sha256};

fn openssl_installed() -> bool {
    let found = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("SKIPPED: the `openssl` command is not installed (apt-get install -y openssl)");
    }
    found
}

/// Runs `openssl ARGS`, which must succeed; returns its standard output.
fn openssl(args: &[&str]) -> Vec<u8> {
    let output = Command::new("openssl").args(args).output().unwrap();
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn files(dir: &Path, extension: &str) -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == extension))
        .map(|path| path.display().to_string())
        .collect();
    found.sort();
    found
}

#[test]
fn openssl_reads_every_key_and_derives_the_same_public_keys() {
    if !openssl_installed() {
        return;
    }
    let parties = Parties::new();
    parties.bank.issue_atm("atm-1", validity()).unwrap();
    let mut checked = 0;
    for dir in [
        parties.bank.organisation().dir(),
        parties.credit.organisation().dir(),
    ] {
        for key in files(dir, "key")
            .into_iter()
            .chain(files(&dir.join("oce"), "key"))
        {
            let text = openssl(&["pkey", "-in", &key, "-noout", "-text"]);
            let text = String::from_utf8(text).unwrap();
            assert!(
                text.contains("prime256v1") || text.contains("P-256"),
                "{key}: {text}"
            );
            assert!(
                std::fs::read_to_string(&key)
                    .unwrap()
                    .starts_with("-----BEGIN PRIVATE KEY-----\n")
            );
            let public = key.replace(".key", ".pub");
            if Path::new(&public).exists() {
                openssl(&["pkey", "-pubin", "-in", &public, "-noout"]);
                // OpenSSL's public key of our private key is our public key file, byte for byte.
                let derived = openssl(&["pkey", "-in", &key, "-pubout"]);
                assert_eq!(derived, std::fs::read(&public).unwrap(), "{public}");
            }
            checked += 1;
        }
    }
    // Bank: identity, OCE CA, token signing, card CA, delivery, issuer, atm-1; credit: identity, OCE CA, HPKE.
    assert_eq!(checked, 10);
}

#[test]
fn fingerprints_are_sha256_of_what_openssl_writes_as_der() {
    if !openssl_installed() {
        return;
    }
    let parties = Parties::new();
    let public = parties.bank.organisation().dir().join("identity.pub");
    let der = openssl(&[
        "pkey",
        "-pubin",
        "-in",
        public.to_str().unwrap(),
        "-outform",
        "DER",
    ]);
    let expected: [u8; 32] = Sha256::digest(&der).into();
    assert_eq!(
        parties.bank.organisation().fingerprint(),
        Fingerprint(expected)
    );
    let identity = contract::read_identity(&public).unwrap();
    assert_eq!(Fingerprint::of(&identity).to_hex(), hex::encode(expected));
}

/// Replaces `name` (and its `.pub`) in `dir` with a key `openssl genpkey` made.
fn replace_with_openssl_key(dir: &Path, name: &str) {
    let key = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    std::fs::remove_file(&key).unwrap();
    std::fs::remove_file(&public).unwrap();
    let (key, public) = (key.to_str().unwrap(), public.to_str().unwrap());
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        key,
    ]);
    openssl(&["pkey", "-in", key, "-pubout", "-out", public]);
}

#[test]
fn keys_openssl_made_load_and_work_through_an_exchange() {
    if !openssl_installed() {
        return;
    }
    let parties = Parties::new();
    let bank_dir = parties.bank.organisation().dir().to_owned();
    let credit_dir = parties.credit.organisation().dir().to_owned();
    replace_with_openssl_key(&bank_dir, "identity");
    replace_with_openssl_key(&bank_dir, "token-signing");
    replace_with_openssl_key(&credit_dir, "identity");
    replace_with_openssl_key(&credit_dir, "hpke");
    let bank = BankKeys::load(&bank_dir).unwrap();
    let credit = CreditKeys::load(&credit_dir).unwrap();
    assert_ne!(
        bank.organisation().fingerprint(),
        parties.bank.organisation().fingerprint()
    );

    let bank_identity = contract::read_identity(&bank_dir.join("identity.pub")).unwrap();
    let credit_identity = contract::read_identity(&credit_dir.join("identity.pub")).unwrap();
    let offer = bank.export_offer(CREDIT_ID, validity()).unwrap();
    let credit_contract = credit
        .import_offer(&offer, &bank_identity, today())
        .unwrap();
    let acceptance = credit
        .export_acceptance(&credit_contract, APPLET, validity())
        .unwrap();
    let bank_contract = bank
        .import_acceptance(&acceptance, &credit_identity, today())
        .unwrap();
    // The HPKE key is the scalar OpenSSL made: its public point is what OpenSSL derives.
    let hpke_pub = contract::read_identity(&credit_dir.join("hpke.pub")).unwrap();
    let point = apdu_spec::scp11::session::encode_public_key(&hpke_pub);
    assert_eq!(bank_contract.hpke_key().to_sec1(), point);
    assert_eq!(
        credit_contract.token_key(),
        bank.token_signing_key().verifying_key()
    );
}

#[test]
fn sec1_keys_openssl_writes_load_too() {
    if !openssl_installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pkcs8 = dir.path().join("k.pem");
    let sec1 = dir.path().join("sec1.pem");
    let (pkcs8, sec1) = (pkcs8.to_str().unwrap(), sec1.to_str().unwrap());
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        pkcs8,
    ]);
    openssl(&["ec", "-in", pkcs8, "-out", sec1]);
    let a = card_client::keyfile::read_secret(Path::new(pkcs8)).unwrap();
    let b = card_client::keyfile::read_secret(Path::new(sec1)).unwrap();
    assert_eq!(a.to_bytes(), b.to_bytes());
}

#[test]
fn openssl_verifies_a_bundle_signature_from_the_spec() {
    if !openssl_installed() {
        return;
    }
    let parties = Parties::new();
    let offer: serde_json::Value = serde_json::from_slice(&parties.offer()).unwrap();
    // docs/contract.md §2: the signed message is the label then the body text; the signature r ‖ s in hex.
    let message = [
        contract::Kind::BankOffer.label(),
        offer["body"].as_str().unwrap().as_bytes(),
    ]
    .concat();
    let raw = hex::decode(offer["signature"].as_str().unwrap()).unwrap();
    let der = p256::ecdsa::Signature::from_slice(&raw).unwrap().to_der();
    let dir = tempfile::tempdir().unwrap();
    let (message_path, signature_path) =
        (dir.path().join("message"), dir.path().join("signature.der"));
    std::fs::write(&message_path, &message).unwrap();
    std::fs::write(&signature_path, der.as_bytes()).unwrap();
    let identity = parties.bank.organisation().dir().join("identity.pub");
    let verify = |message: &Path| {
        Command::new("openssl")
            .args([
                "dgst",
                "-sha256",
                "-verify",
                identity.to_str().unwrap(),
                "-signature",
            ])
            .arg(&signature_path)
            .arg(message)
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(verify(&message_path));
    // And refuses the body without its label: the label is part of what is signed.
    std::fs::write(&message_path, offer["body"].as_str().unwrap()).unwrap();
    assert!(!verify(&message_path));
}
