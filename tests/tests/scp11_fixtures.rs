//! The SCP11 test keys of `tests/fixtures/scp11` (what secured conformance scripts use through `keys`): they load,
//! each OCE's chain verifies against the OCE CA (or must not, for the stranger and the expired one), and they stay
//! valid long enough that CI never sees them expire.
//!
//! Regenerate them (only when a new kind of OCE is needed: the scripts name them, not their bytes) with
//!
//! ```sh
//! rm tests/fixtures/scp11/*.key tests/fixtures/scp11/*.cert
//! cargo test -p linkcard-tests --test scp11_fixtures -- --ignored
//! ```

use std::path::{Path, PathBuf};

use apdu_spec::scp11::cert::{self, Certificate, Date, Role};
use card_client::keyfile;
use card_client::scp11::{Authority, OceCredentials};
use conformance::fixtures::{CARD_CA_FILE, Keyring, OCE_CA_FILE};
use linkcard_tests::scp11_fixtures_dir;

fn date(year: u16, month: u8, day: u8) -> Date {
    Date::from_ymd(year, month, day).unwrap()
}

/// From when and until when the fixtures' certificates are valid.
fn validity() -> (Date, Date) {
    (date(2025, 1, 1), date(2099, 12, 31))
}

/// The OCEs the OCE CA certifies directly: name, subject, role.
const DIRECT: [(&str, &str, Role); 4] = [
    ("issuer", "issuer system", Role::Issuer),
    ("bank-atm", "bank ATM", Role::BankAtm),
    ("credit-pos", "credit POS", Role::CreditPos),
    ("token-delivery", "bank token delivery", Role::TokenDelivery),
];

fn write_key(dir: &Path, name: &str, key: &p256::SecretKey) {
    keyfile::write_secret(&dir.join(name), key).unwrap();
}

fn write_oce(dir: &Path, name: &str, oce: &OceCredentials) {
    write_key(
        dir,
        &format!("{name}.key"),
        &p256::SecretKey::from(oce.static_key),
    );
    keyfile::write_new(
        &dir.join(format!("{name}.cert")),
        &oce.chain.concat(),
        0o644,
    )
    .unwrap();
}

fn new_authority(dir: &Path, file: &str) -> Authority {
    let key = p256::SecretKey::from(card_client::scp11::random_scalar().unwrap());
    write_key(dir, file, &key);
    Authority::from_key(&key)
}

#[test]
#[ignore = "writes the checked-in test keys; run by hand after removing the old ones"]
fn regenerate_scp11_fixtures() {
    let dir = scp11_fixtures_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let (effective, expiration) = validity();
    new_authority(&dir, CARD_CA_FILE);
    let oce_ca = new_authority(&dir, OCE_CA_FILE);
    for (name, subject, role) in DIRECT {
        let oce = oce_ca
            .issue_oce(subject.as_bytes(), role, effective, expiration)
            .unwrap();
        write_oce(&dir, name, &oce);
    }
    // OCE CA → intermediate CA → leaf: uploaded as `80 2A 03 90 <link>`, then `80 2A 03 10 <leaf>`.
    let intermediate = new_authority(&dir, "intermediate-ca.key");
    let link = oce_ca
        .certify_authority(&intermediate, effective, expiration)
        .unwrap();
    let mut chained = intermediate
        .issue_oce(b"chained issuer", Role::Issuer, effective, expiration)
        .unwrap();
    chained.chain.insert(0, link);
    write_oce(&dir, "chained", &chained);
    // An issuer certificate from a CA no card trusts, and one that expired long ago.
    let stranger_ca = new_authority(&dir, "stranger-ca.key");
    let stranger = stranger_ca
        .issue_oce(b"stranger", Role::Issuer, effective, expiration)
        .unwrap();
    write_oce(&dir, "stranger", &stranger);
    let expired = oce_ca
        .issue_oce(
            b"expired issuer",
            Role::Issuer,
            date(2019, 1, 1),
            date(2020, 12, 31),
        )
        .unwrap();
    write_oce(&dir, "expired", &expired);
}

fn keyring() -> Keyring {
    Keyring::load(&scp11_fixtures_dir()).unwrap()
}

/// The leaf of `name`, verified against the OCE CA as of `today`.
fn verify(keys: &Keyring, name: &str, today: Date) -> Result<(Role, Date), cert::CertError> {
    let oce = keys.oce(name).unwrap();
    let chain = oce.credentials.chain.concat();
    let leaf = cert::verify_chain(&keys.oce_ca.issuer().unwrap(), &chain, today)?;
    Ok((leaf.role().unwrap(), leaf.expiration()))
}

#[test]
fn fixtures_load_and_verify_until_2099() {
    let keys = keyring();
    let (_, expiration) = validity();
    let late = date(2099, 12, 30);
    for (name, _, role) in DIRECT {
        assert_eq!(verify(&keys, name, late), Ok((role, expiration)), "{name}");
    }
    assert_eq!(
        verify(&keys, "chained", late),
        Ok((Role::Issuer, expiration))
    );
    assert_eq!(keys.oce("chained").unwrap().credentials.chain.len(), 2);
    assert!(verify(&keys, "stranger", late).is_err(), "unknown CA");
    assert!(verify(&keys, "expired", late).is_err(), "expired");
    assert_eq!(
        verify(&keys, "expired", date(2020, 6, 1)).map(|(role, _)| role),
        Ok(Role::Issuer),
        "expired only by date"
    );
}

#[test]
fn chained_link_is_a_ca_certificate_from_the_oce_ca() {
    let keys = keyring();
    let chain = keys.oce("chained").unwrap().credentials.chain;
    let (link, _) = Certificate::parse(&chain[0]).unwrap();
    assert_eq!(link.key_usage(), cert::CERTIFICATE_SIGNING);
    assert_eq!(link.ca_kloc_id(), keys.oce_ca.id.as_slice());
    let intermediate: PathBuf = scp11_fixtures_dir().join("intermediate-ca.key");
    let intermediate = Authority::from_key(&keyfile::read_secret(&intermediate).unwrap());
    assert_eq!(link.subject_id(), intermediate.id.as_slice());
}
