//! Detached signatures: what this crate signs `openssl dgst -sha256 -verify` accepts, what OpenSSL signs this crate
//! verifies, and every altered, truncated, unsigned or foreign-signed file is refused before it is parsed.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use interchange::signing::{open_verified, sign_bytes, signature_path};
use interchange::{
    DeductionFile, DeductionWriter, InterchangeError, SignedFile, StatusReport, TransferNotice,
    read_signed_deductions, read_signed_status_report, read_signed_transfer_notice, verify_file,
    write_signed,
};
use p256::PublicKey;
use p256::ecdsa::SigningKey;
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey, LineEnding};

fn key(byte: u8) -> SigningKey {
    SigningKey::from_slice(&[byte; 32]).expect("a valid P-256 scalar")
}

fn public(key: &SigningKey) -> PublicKey {
    PublicKey::from(key.verifying_key())
}

fn write_public_pem(key: &SigningKey, path: &Path) {
    let pem = public(key)
        .to_public_key_pem(LineEnding::LF)
        .expect("SPKI PEM");
    std::fs::write(path, pem).expect("public key written");
}

fn openssl(arguments: &[&str]) -> (bool, String) {
    let output = Command::new("openssl")
        .args(arguments)
        .output()
        .expect("the openssl command runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), said)
}

fn text(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}

fn openssl_verifies(public_pem: &Path, xml: &Path) -> (bool, String) {
    let signature = signature_path(xml);
    let (public_pem, signature, xml) = (text(public_pem), text(&signature), text(xml));
    openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        public_pem,
        "-signature",
        signature,
        xml,
    ])
}

/// A key pair made by OpenSSL (`ecparam -genkey`, SEC1): the private key's and the SPKI public key's PEM files.
fn openssl_key_pair(directory: &Path) -> (PathBuf, PathBuf) {
    let private_pem = directory.join("bank.key.pem");
    let public_pem = directory.join("bank.pub.pem");
    let (private, public) = (text(&private_pem), text(&public_pem));
    let (made, said) = openssl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        private,
    ]);
    assert!(made, "{said}");
    let (made, said) = openssl(&["pkey", "-in", private, "-pubout", "-out", public]);
    assert!(made, "{said}");
    (private_pem, public_pem)
}

#[test]
fn openssl_verifies_what_this_crate_signs() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let sender = key(0x11);
    let public_pem = directory.path().join("credit.pub.pem");
    write_public_pem(&sender, &public_pem);
    let xml_path = directory.path().join("deductions-2026-01-31.xml");
    let xml = sample_deductions(EUR).to_xml().expect("written");
    write_signed(&xml_path, &xml, &sender).expect("signed");
    assert!(directory.path().join("deductions-2026-01-31.sig").exists());

    let (verified, said) = openssl_verifies(&public_pem, &xml_path);
    assert!(verified && said.contains("Verified OK"), "{said}");

    // One changed byte and OpenSSL refuses too.
    let mut bytes = std::fs::read(&xml_path).expect("read");
    let last = bytes.len() - 3;
    bytes[last] ^= 1;
    std::fs::write(&xml_path, bytes).expect("altered");
    let (verified, said) = openssl_verifies(&public_pem, &xml_path);
    assert!(!verified, "{said}");
}

#[test]
fn this_crate_verifies_what_openssl_signs() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let (private_pem, public_pem) = openssl_key_pair(directory.path());
    let sender =
        PublicKey::from_public_key_pem(&std::fs::read_to_string(&public_pem).expect("read"))
            .expect("SPKI PEM");
    let xml_path = directory.path().join("status-2026-01-31.xml");
    let report = sample_status_report(JPY);
    std::fs::write(&xml_path, report.to_xml().expect("written")).expect("written");
    let signature = signature_path(&xml_path);
    let arguments = [
        "dgst",
        "-sha256",
        "-sign",
        text(&private_pem),
        "-out",
        text(&signature),
    ];
    let (signed, said) = openssl(&[&arguments[..], &[text(&xml_path)]].concat());
    assert!(signed, "{said}");

    verify_file(&xml_path, &sender).expect("OpenSSL's signature verifies");
    let reader = read_signed_status_report(&xml_path, &sender).expect("verified and opened");
    assert_eq!(reader.head(), &report.head().expect("a head"));
    let statuses: Vec<_> = reader.collect::<Result<_, _>>().expect("read");
    assert_eq!(statuses, report.statuses);
}

#[test]
fn an_openssl_key_signs_through_this_crate() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let (private_pem, public_pem) = openssl_key_pair(directory.path());
    let pkcs8_pem = directory.path().join("bank.pkcs8.pem");
    let arguments = [
        "pkcs8",
        "-topk8",
        "-nocrypt",
        "-in",
        text(&private_pem),
        "-out",
    ];
    let (converted, said) = openssl(&[&arguments[..], &[text(&pkcs8_pem)]].concat());
    assert!(converted, "{said}");
    let signing = SigningKey::from_pkcs8_pem(&std::fs::read_to_string(&pkcs8_pem).expect("read"))
        .expect("PKCS#8");
    let notice_path = directory.path().join("notice-2026-01-31.xml");
    let xml = sample_notice(JPY).to_xml().expect("written");
    write_signed(&notice_path, &xml, &signing).expect("signed");
    let (verified, said) = openssl_verifies(&public_pem, &notice_path);
    assert!(verified, "{said}");
}

fn refused_for_its_signature(path: &Path, sender: &PublicKey) -> bool {
    matches!(
        verify_file(path, sender),
        Err(InterchangeError::BadSignature { .. })
    )
}

#[test]
fn altered_truncated_and_foreign_signed_files_are_refused_before_parsing() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let sender = key(0x22);
    let path = directory.path().join("deductions.xml");
    let xml = sample_deductions(EUR).to_xml().expect("written");
    write_signed(&path, &xml, &sender).expect("signed");
    verify_file(&path, &public(&sender)).expect("intact");
    assert!(
        refused_for_its_signature(&path, &public(&key(0x33))),
        "signed by another key"
    );

    // Truncated: refused for its signature, not parsed (a parse would say "truncated").
    std::fs::write(&path, xml.get(..xml.len() / 2).expect("half")).expect("truncated");
    assert!(matches!(
        read_signed_deductions(&path, &public(&sender)),
        Err(InterchangeError::BadSignature { .. })
    ));

    // Altered in a way that still parses: a debtor's name.
    let altered = String::from_utf8(xml.clone())
        .expect("UTF-8")
        .replace("Ada", "Eve");
    assert!(
        DeductionFile::from_xml(altered.as_bytes()).is_ok(),
        "the XML alone cannot tell"
    );
    std::fs::write(&path, altered.as_bytes()).expect("altered");
    assert!(
        refused_for_its_signature(&path, &public(&sender)),
        "altered"
    );

    let mut longer = xml.clone();
    longer.push(b' ');
    std::fs::write(&path, &longer).expect("appended");
    assert!(
        refused_for_its_signature(&path, &public(&sender)),
        "one byte appended"
    );
}

#[test]
fn missing_and_garbled_signatures_are_refused() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let sender = key(0x22);
    let path = directory.path().join("deductions.xml");
    let xml = sample_deductions(EUR).to_xml().expect("written");
    write_signed(&path, &xml, &sender).expect("signed");
    let signature = signature_path(&path);
    let good_signature = std::fs::read(&signature).expect("read");

    std::fs::remove_file(&signature).expect("removed");
    assert!(matches!(
        verify_file(&path, &public(&sender)),
        Err(InterchangeError::MissingSignature { .. })
    ));
    let garbled = [
        Vec::new(),
        vec![0x30, 0x06, 0x02, 0x01, 0x00],
        vec![0x5a; 70],
        vec![0x30; 200],
    ];
    for bytes in garbled {
        std::fs::write(&signature, bytes).expect("garbled");
        assert!(matches!(
            verify_file(&path, &public(&sender)),
            Err(InterchangeError::MalformedSignature { .. })
        ));
    }
    // A well-formed signature of other bytes.
    let other = sign_bytes(b"another file", &sender).expect("signed");
    std::fs::write(&signature, other.as_bytes()).expect("written");
    assert!(refused_for_its_signature(&path, &public(&sender)));

    std::fs::write(&signature, good_signature).expect("restored");
    let file: Vec<_> = read_signed_deductions(&path, &public(&sender))
        .expect("verified")
        .collect::<Result<_, _>>()
        .expect("read");
    assert_eq!(file, sample_deductions(EUR).deductions);
}

#[test]
fn streaming_writers_sign_as_they_write() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let sender = key(0x44);
    let path = directory.path().join("deductions.xml");
    let file = sample_deductions(JPY);
    let mut writer = DeductionWriter::new(
        SignedFile::create(&path).expect("created"),
        &file.head().expect("a head"),
    )
    .expect("head written");
    assert!(!path.exists(), "nothing is in place before the commit");
    for deduction in &file.deductions {
        writer.write(deduction).expect("written");
    }
    writer
        .finish()
        .expect("complete")
        .commit(&sender)
        .expect("committed");
    assert_eq!(
        std::fs::read(&path).expect("read"),
        file.to_xml().expect("whole file")
    );
    let read: Vec<_> = read_signed_deductions(&path, &public(&sender))
        .expect("verified")
        .collect::<Result<_, _>>()
        .expect("read");
    assert_eq!(read, file.deductions);
    let leftovers: Vec<_> = std::fs::read_dir(directory.path())
        .expect("listed")
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let notice_path = directory.path().join("notice.xml");
    write_signed(
        &notice_path,
        &sample_notice(EUR).to_xml().expect("written"),
        &sender,
    )
    .expect("signed");
    let entries: Vec<_> = read_signed_transfer_notice(&notice_path, &public(&sender))
        .expect("verified")
        .collect::<Result<_, _>>()
        .expect("read");
    assert_eq!(entries, sample_notice(EUR).entries);
}

#[test]
fn an_abandoned_write_leaves_the_previous_signed_file_alone() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let sender = key(0x55);
    let path = directory.path().join("notice.xml");
    let first = sample_notice(EUR).to_xml().expect("written");
    write_signed(&path, &first, &sender).expect("signed");

    let mut second = SignedFile::create(&path).expect("created");
    std::io::Write::write_all(&mut second, b"<?xml half a file").expect("written");
    drop(second);
    assert!(
        !directory.path().join("notice.xml.partial").exists(),
        "the partial file is removed"
    );
    let mut reader = open_verified(&path, &public(&sender)).expect("the first file still verifies");
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut reader, &mut bytes).expect("read");
    assert_eq!(bytes, first);
    assert_eq!(
        TransferNotice::from_xml(&bytes).expect("parsed"),
        sample_notice(EUR)
    );

    // A new version replaces both the file and its signature.
    let report = sample_status_report(EUR).to_xml().expect("written");
    write_signed(&path, &report, &sender).expect("signed again");
    assert_eq!(
        StatusReport::from_xml(&std::fs::read(&path).expect("read")).expect("parsed"),
        sample_status_report(EUR)
    );
    verify_file(&path, &public(&sender)).expect("the new signature matches the new file");
}
