//! The whole key exchange between a bank and a credit company in a temporary directory, then a token minted
//! with what the bank received and opened with what the credit company received; every refusal of an import.

mod common;

use apdu_spec::scp11::cert::{CertError, Certificate};
use common::*;
use contract::{
    BankKeys, BundleError, CreditKeys, Fingerprint, Kind, Mismatch, Role, StoreError, Validity,
};
use token::{BankKeyring, TokenBody};

fn token_body(bank_id: &[u8], credit_id: &[u8]) -> TokenBody {
    TokenBody {
        user_name: "Hanako Yamada".to_owned(),
        user_id: "U-000042".to_owned(),
        sum: 1_250_000,
        currency: 392,
        deposit_date: today(),
        token_id: *b"TOKEN-0000000001",
        valid_from: today(),
        valid_until: date(2027, 1, 31),
        bank_id: bank_id.to_vec(),
        bank_account: "0001-234-5678901".to_owned(),
        credit_id: credit_id.to_vec(),
        pan: "4111111111111111".to_owned(),
        card_binding: [0xCB; 32],
    }
}

#[test]
fn full_exchange_then_a_token_opens() {
    let parties = Parties::new();
    let (bank, credit) = (&parties.bank, &parties.credit);

    // Bank → credit: the offer, verified against the bank's identity key handed over out of band.
    let offer = bank.export_offer(CREDIT_ID, validity()).unwrap();
    let bank_identity =
        contract::read_identity(&bank.organisation().dir().join("identity.pub")).unwrap();
    assert_eq!(
        Fingerprint::of(&bank_identity),
        bank.organisation().fingerprint()
    );
    let credit_contract = credit
        .import_offer(&offer, &bank_identity, today())
        .unwrap();
    assert_eq!(credit_contract.bank_id(), BANK_ID);
    assert_eq!(credit_contract.card_ca(), &bank.card_ca().anchor());
    credit.save_contract(&credit_contract).unwrap();

    // Credit → bank: the acceptance with the delivery certificate.
    let acceptance = credit
        .export_acceptance(&credit_contract, APPLET, validity())
        .unwrap();
    let credit_identity =
        contract::read_identity(&credit.organisation().dir().join("identity.pub")).unwrap();
    let bank_contract = bank
        .import_acceptance(&acceptance, &credit_identity, today())
        .unwrap();
    assert_eq!(bank_contract.credit_id(), CREDIT_ID);
    assert_eq!(bank_contract.credit_applet(), &APPLET);
    assert_eq!(
        bank_contract.oce_ca(),
        &credit.organisation().oce_ca().anchor()
    );
    bank.save_contract(&bank_contract).unwrap();

    // The delivery OCE: the bank's delivery key, certified token-delivery by the credit OCE CA.
    let delivery = bank_contract.delivery_credentials(bank);
    let (certificate, _) = Certificate::parse(&delivery.chain[0]).unwrap();
    assert_eq!(certificate.role(), Some(Role::TokenDelivery));
    assert_eq!(
        certificate.public_key_bytes(),
        &card_client::scp11::public_key_of(&delivery.static_key)
    );
    certificate
        .verify(&credit.organisation().oce_ca().issuer(), today())
        .unwrap();

    // Both sides reopen their directories and their contracts.
    let bank = BankKeys::load(bank.organisation().dir()).unwrap();
    let credit = CreditKeys::load(credit.organisation().dir()).unwrap();
    let bank_contract = bank.load_contract(CREDIT_ID, today()).unwrap();
    let credit_contract = credit.load_contract(BANK_ID, today()).unwrap();
    assert_eq!(bank.contracts().unwrap(), vec![CREDIT_ID.to_vec()]);
    assert_eq!(credit.contracts().unwrap(), vec![BANK_ID.to_vec()]);

    // The bank mints for the credit company's HPKE key; the credit company opens with the bank's token key.
    let body = token_body(BANK_ID, CREDIT_ID);
    let mut rng = token::os_rng().unwrap();
    let minted = token::mint(
        &body,
        bank.token_signing_key(),
        bank_contract.hpke_key(),
        &mut rng,
    )
    .unwrap();
    let mut keyring = BankKeyring::new();
    credit_contract.register(&mut keyring);
    let opened = token::open(
        &minted,
        &credit.recipient(),
        &keyring,
        today(),
        Some(&[0xCB; 32]),
    );
    assert_eq!(opened.unwrap(), body);
}

#[test]
fn keys_load_back_as_created() {
    let parties = Parties::new();
    let bank = BankKeys::load(parties.bank.organisation().dir()).unwrap();
    assert_eq!(bank.id(), BANK_ID);
    assert_eq!(
        bank.organisation().fingerprint(),
        parties.bank.organisation().fingerprint()
    );
    assert_eq!(bank.token_signing_key(), parties.bank.token_signing_key());
    assert_eq!(bank.card_ca().anchor(), parties.bank.card_ca().anchor());
    assert_eq!(
        bank.delivery_public_key(),
        parties.bank.delivery_public_key()
    );
    assert_eq!(bank.issuer().chain, parties.bank.issuer().chain);
    let credit = CreditKeys::load(parties.credit.organisation().dir()).unwrap();
    assert_eq!(
        credit.hpke_key().public_key(),
        parties.credit.hpke_key().public_key()
    );
    assert_eq!(
        credit.organisation().oce_ca().anchor(),
        parties.credit.organisation().oce_ca().anchor()
    );
}

#[test]
fn nothing_is_overwritten() {
    let parties = Parties::new();
    let bank_dir = parties.bank.organisation().dir().to_owned();
    let before = snapshot(&bank_dir);
    assert!(matches!(
        BankKeys::create(&bank_dir, BANK_ID, validity()),
        Err(contract::KeysError::AlreadyExists { .. })
    ));
    assert!(matches!(
        CreditKeys::load(&bank_dir),
        Err(contract::KeysError::WrongParty { .. })
    ));
    // A terminal name twice, and names that would leave the directory.
    parties.bank.issue_atm("atm-1", validity()).unwrap();
    assert!(parties.bank.issue_atm("atm-1", validity()).is_err());
    for name in ["", "../x", ".hidden", "a/b", "twenty-one-characters"] {
        assert!(matches!(
            parties.bank.issue_atm(name, validity()),
            Err(contract::KeysError::InvalidName(_))
        ));
    }
    let after = snapshot(&bank_dir);
    assert_eq!(
        after.len(),
        before.len() + 2,
        "only atm-1.key and atm-1.cert were added"
    );
    assert!(before.iter().all(|file| after.contains(file)));
}

#[test]
fn terminals_get_their_role_from_their_own_ca() {
    let parties = Parties::new();
    let atm = parties.bank.issue_atm("atm-1", validity()).unwrap();
    let pos = parties.credit.issue_pos("pos-1", validity()).unwrap();
    for (oce, role, organisation) in [
        (&atm, Role::BankAtm, parties.bank.organisation()),
        (&pos, Role::CreditPos, parties.credit.organisation()),
    ] {
        let (certificate, _) = Certificate::parse(&oce.chain[0]).unwrap();
        assert_eq!(certificate.role(), Some(role));
        certificate
            .verify(&organisation.oce_ca().issuer(), today())
            .unwrap();
    }
    let loaded = parties
        .credit
        .organisation()
        .load_terminal("pos-1")
        .unwrap();
    assert_eq!(loaded.chain, pos.chain);
    // The issuer OCE is certified by the bank's OCE CA, role issuer.
    let (issuer, _) = Certificate::parse(&parties.bank.issuer().chain[0]).unwrap();
    assert_eq!(issuer.role(), Some(Role::Issuer));
    issuer
        .verify(&parties.bank.organisation().oce_ca().issuer(), today())
        .unwrap();
}

#[test]
fn persisted_contracts_are_never_replaced_and_are_checked_again() {
    let parties = Parties::new();
    let contract = parties
        .credit
        .import_offer(&parties.offer(), &parties.bank_identity(), today())
        .unwrap();
    assert!(matches!(
        parties.credit.load_contract(BANK_ID, today()),
        Err(StoreError::NotFound { .. })
    ));
    parties.credit.save_contract(&contract).unwrap();
    assert!(matches!(
        parties.credit.save_contract(&contract),
        Err(StoreError::AlreadySaved { .. })
    ));
    // Expired since: refused on loading.
    assert!(matches!(
        parties.credit.load_contract(BANK_ID, date(2028, 1, 1)),
        Err(StoreError::Bundle(BundleError::Expired { .. }))
    ));
    // Changed on disk: refused on loading.
    let path = parties
        .credit
        .organisation()
        .dir()
        .join("contracts")
        .join(format!("{}.json", hex::encode(BANK_ID)));
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() - 10;
    bytes[at] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        parties.credit.load_contract(BANK_ID, today()),
        Err(StoreError::Bundle(_))
    ));
}

/// Imports `bundle` on the side `kind` names, with the right sender key, and checks that nothing was written.
fn import(parties: &Parties, bundle: &[u8], kind: Kind) -> BundleError {
    let before = snapshot(parties.dir.path());
    let error = match kind {
        Kind::BankOffer => parties
            .credit
            .import_offer(bundle, &parties.bank_identity(), today())
            .unwrap_err(),
        Kind::CreditAcceptance => parties
            .bank
            .import_acceptance(bundle, &parties.credit_identity(), today())
            .unwrap_err(),
    };
    assert_eq!(
        snapshot(parties.dir.path()),
        before,
        "a refused import wrote something"
    );
    error
}

#[test]
fn malformed_truncated_and_unknown_versions() {
    let parties = Parties::new();
    let offer = parties.offer();
    for junk in [
        &b"not json"[..],
        b"[]",
        b"{}",
        b"{\"format\":\"linkcard-contract\"}",
    ] {
        assert!(matches!(
            import(&parties, junk, Kind::BankOffer),
            BundleError::Malformed(_)
        ));
    }
    assert!(matches!(
        import(
            &parties,
            b"{\"format\":\"x\",\"version\":1}",
            Kind::BankOffer
        ),
        BundleError::NotABundle
    ));
    let text = String::from_utf8(offer.clone()).unwrap();
    let v2 = text.replace("\"version\": 1,", "\"version\": 2,");
    assert!(matches!(
        import(&parties, v2.as_bytes(), Kind::BankOffer),
        BundleError::UnknownVersion(2)
    ));
    // Every cut is refused; a cut inside the object is reported as truncated.
    for cut in 0..offer.len() {
        let error = import(&parties, &offer[..cut], Kind::BankOffer);
        if cut > 0 && cut < offer.len() - 2 {
            assert!(
                matches!(error, BundleError::Truncated),
                "cut at {cut}: {error:?}"
            );
        }
    }
    // Another spelling of the same JSON is not the bundle.
    let spaced = text.replacen("{\n", "{ \n", 1);
    assert!(matches!(
        import(&parties, spaced.as_bytes(), Kind::BankOffer),
        BundleError::NotCanonical
    ));
    let mut upper = offer.clone();
    let at = text.find("\"signature\": \"").unwrap() + 14;
    let hex_digit = upper[at..].iter().position(u8::is_ascii_lowercase).unwrap() + at;
    upper[hex_digit] = upper[hex_digit].to_ascii_uppercase();
    // Hex is lowercase: the uppercase spelling is not a signature.
    assert!(matches!(
        import(&parties, &upper, Kind::BankOffer),
        BundleError::BadSignature
    ));
    // A body in another spelling, properly signed.
    let key = parties.bank.organisation().identity();
    let respaced = resign(&offer, Kind::BankOffer, key, None, |body| {
        body.replacen(',', ", ", 1)
    });
    assert!(matches!(
        import(&parties, &respaced, Kind::BankOffer),
        BundleError::NotCanonical
    ));
}

#[test]
fn signatures_and_signers() {
    let parties = Parties::new();
    let offer = parties.offer();
    let text = String::from_utf8(offer.clone()).unwrap();
    // A changed body under the original signature.
    let at = text.find("\\\"valid_until\\\":\\\"2027").unwrap() + 23;
    let mut changed = offer.clone();
    changed[at] = b'8';
    assert!(matches!(
        import(&parties, &changed, Kind::BankOffer),
        BundleError::BadSignature
    ));
    // Another organisation's key, named as itself: the wrong signer.
    let stranger = Parties::new();
    let foreign = stranger.bank.export_offer(CREDIT_ID, validity()).unwrap();
    assert!(matches!(
        import(&parties, &foreign, Kind::BankOffer),
        BundleError::WrongSigner { .. }
    ));
    // Another key claiming to be the bank: the signature does not verify.
    let forged = resign(
        &offer,
        Kind::BankOffer,
        stranger.bank.organisation().identity(),
        Some(parties.bank.organisation().fingerprint()),
        |body| body,
    );
    assert!(matches!(
        import(&parties, &forged, Kind::BankOffer),
        BundleError::BadSignature
    ));
    // The bank's key over a body naming another identity.
    let other = stranger.bank.organisation().fingerprint().to_hex();
    let misnamed = resign(
        &offer,
        Kind::BankOffer,
        parties.bank.organisation().identity(),
        None,
        |body| replace_field(&body, "bank_identity", &other),
    );
    assert!(matches!(
        import(&parties, &misnamed, Kind::BankOffer),
        BundleError::WrongSigner { .. }
    ));
    // An offer given where an acceptance is expected, and an offer's signature labelled as an acceptance.
    let as_acceptance = parties
        .bank
        .import_acceptance(&offer, &parties.bank_identity(), today())
        .unwrap_err();
    assert!(matches!(as_acceptance, BundleError::WrongKind { .. }));
    let relabelled = text.replace(
        "\"kind\": \"bank-offer\"",
        "\"kind\": \"credit-acceptance\"",
    );
    let error = parties
        .bank
        .import_acceptance(relabelled.as_bytes(), &parties.bank_identity(), today())
        .unwrap_err();
    assert!(matches!(error, BundleError::BadSignature), "{error:?}");
}

#[test]
fn bundles_for_another_party() {
    let parties = Parties::new();
    let to_another = parties.bank.export_offer(b"CRED0002", validity()).unwrap();
    assert!(matches!(
        import(&parties, &to_another, Kind::BankOffer),
        BundleError::NotForUs { .. }
    ));
    // An acceptance for another bank, signed by our credit company.
    let acceptance = parties.acceptance();
    let key = parties.credit.organisation().identity();
    let elsewhere = resign(&acceptance, Kind::CreditAcceptance, key, None, |body| {
        replace_field(&body, "bank_id", &hex::encode(b"BANK0002"))
    });
    assert!(matches!(
        import(&parties, &elsewhere, Kind::CreditAcceptance),
        BundleError::NotForUs { .. }
    ));
}

#[test]
fn acceptances_that_do_not_answer_the_offer() {
    let parties = Parties::new();
    let acceptance = parties.acceptance();
    let key = parties.credit.organisation().identity();
    let ca = parties.credit.organisation().oce_ca();
    let delivery = parties.bank.delivery_public_key();
    let (from, until) = (validity().from, validity().until);
    let with_certificate = |certificate: Vec<u8>| {
        resign(&acceptance, Kind::CreditAcceptance, key, None, |body| {
            replace_field(&body, "delivery_certificate", &hex::encode(&certificate))
        })
    };
    let mismatch = |bundle: &[u8]| match import(&parties, bundle, Kind::CreditAcceptance) {
        BundleError::OfferMismatch(mismatch) => mismatch,
        other => panic!("{other:?}"),
    };
    // For another key.
    let other_key =
        card_client::scp11::public_key_of(&card_client::scp11::random_scalar().unwrap());
    let certificate = ca
        .certify(BANK_ID, &other_key, Some(Role::TokenDelivery), from, until)
        .unwrap();
    assert_eq!(
        mismatch(&with_certificate(certificate)),
        Mismatch::DeliveryKey
    );
    // With another role.
    let certificate = ca
        .certify(BANK_ID, &delivery, Some(Role::CreditPos), from, until)
        .unwrap();
    assert_eq!(
        mismatch(&with_certificate(certificate)),
        Mismatch::DeliveryRole
    );
    // Signed by another CA going by the credit CA's id.
    let mut impostor = card_client::scp11::Authority::generate(b"x").unwrap();
    impostor.id = ca.id.clone();
    let certificate = impostor
        .certify(BANK_ID, &delivery, Some(Role::TokenDelivery), from, until)
        .unwrap();
    assert_eq!(
        mismatch(&with_certificate(certificate)),
        Mismatch::DeliveryIssuer(CertError::SignatureInvalid)
    );
    // Not a certificate; a certificate followed by more bytes.
    assert!(matches!(
        mismatch(&with_certificate(vec![0x7F, 0x21, 0x05, 1, 2])),
        Mismatch::DeliveryCertificate(_)
    ));
    let mut long = ca
        .certify(BANK_ID, &delivery, Some(Role::TokenDelivery), from, until)
        .unwrap();
    long.push(0);
    assert!(matches!(
        mismatch(&with_certificate(long)),
        Mismatch::DeliveryCertificate(_)
    ));
    // An acceptance of another bank key (a bank that went by our id, with other keys).
    let namesake =
        BankKeys::create(&parties.dir.path().join("namesake"), BANK_ID, validity()).unwrap();
    let error = namesake
        .import_acceptance(&acceptance, &parties.credit_identity(), today())
        .unwrap_err();
    assert!(
        matches!(error, BundleError::OfferMismatch(Mismatch::TokenKey)),
        "{error:?}"
    );
}

#[test]
fn dates() {
    let parties = Parties::new();
    let offer = parties.offer();
    let import_on = |today| {
        parties
            .credit
            .import_offer(&offer, &parties.bank_identity(), today)
            .unwrap_err()
    };
    assert!(matches!(
        import_on(date(2027, 12, 1)),
        BundleError::Expired { .. }
    ));
    assert!(matches!(
        import_on(date(2026, 10, 31)),
        BundleError::NotYetValid { .. }
    ));
    // The first and the last day hold.
    for today in [validity().from, validity().until] {
        parties
            .credit
            .import_offer(&offer, &parties.bank_identity(), today)
            .unwrap();
    }
    // A delivery certificate that expired before the acceptance does.
    let contract = parties
        .credit
        .import_offer(&offer, &parties.bank_identity(), today())
        .unwrap();
    let short = Validity::new(today(), today()).unwrap();
    let acceptance = parties
        .credit
        .export_acceptance(&contract, APPLET, short)
        .unwrap();
    let error = parties
        .bank
        .import_acceptance(&acceptance, &parties.credit_identity(), date(2026, 12, 2))
        .unwrap_err();
    assert!(
        matches!(
            error,
            BundleError::OfferMismatch(Mismatch::DeliveryIssuer(CertError::Expired))
        ),
        "{error:?}"
    );
    // An acceptance cannot hold longer than the offer.
    let longer = Validity::new(today(), date(2028, 1, 1)).unwrap();
    assert!(matches!(
        parties.credit.export_acceptance(&contract, APPLET, longer),
        Err(contract::ExportError::OutlastsOffer)
    ));
    // Impossible dates in a signed body.
    let key = parties.bank.organisation().identity();
    for bad in [
        "2027-02-29",
        "2027-2-28",
        "27-02-28",
        "2027-02-28x",
        "2025-01-01",
    ] {
        let changed = resign(&offer, Kind::BankOffer, key, None, |body| {
            replace_field(&body, "valid_until", bad)
        });
        assert!(
            matches!(
                import(&parties, &changed, Kind::BankOffer),
                BundleError::InvalidField("valid_until")
            ),
            "{bad}"
        );
    }
}

#[test]
fn invalid_fields_in_signed_bodies() {
    let parties = Parties::new();
    let offer = parties.offer();
    let acceptance = parties.acceptance();
    let bank_key = parties.bank.organisation().identity();
    let credit_key = parties.credit.organisation().identity();
    let off_curve = format!("04{}", "11".repeat(64));
    for (field, value) in [
        ("bank_id", String::new()),
        ("bank_id", "00".repeat(17)),
        ("credit_id", "ABCD".to_owned()),
        ("token_key", off_curve.clone()),
        ("delivery_key", "04".to_owned()),
    ] {
        let changed = resign(&offer, Kind::BankOffer, bank_key, None, |b| {
            replace_field(&b, field, &value)
        });
        assert!(
            matches!(import(&parties, &changed, Kind::BankOffer), BundleError::InvalidField(f) if f == field),
            "{field} = {value}"
        );
    }
    let changed = resign(&acceptance, Kind::CreditAcceptance, credit_key, None, |b| {
        replace_field(&b, "hpke_key", &off_curve)
    });
    assert!(matches!(
        import(&parties, &changed, Kind::CreditAcceptance),
        BundleError::InvalidField("hpke_key")
    ));
    let changed = resign(&acceptance, Kind::CreditAcceptance, credit_key, None, |b| {
        b.replace("\"pin_try_limit\":3", "\"pin_try_limit\":16")
    });
    assert!(matches!(
        import(&parties, &changed, Kind::CreditAcceptance),
        BundleError::InvalidField("credit_applet")
    ));
    let changed = resign(&acceptance, Kind::CreditAcceptance, credit_key, None, |b| {
        b.replacen('{', "{\"extra\":1,", 1)
    });
    assert!(matches!(
        import(&parties, &changed, Kind::CreditAcceptance),
        BundleError::Malformed(_)
    ));
}
