//! The role commands through the `linkcard` binary, one process per command, state in a temporary data
//! directory: the patent's story step by step, and bad input refused with a clear message and nothing changed.

mod common;

use std::path::Path;

use common::*;

const DECLINED: i32 = 3;

#[test]
fn the_story_role_by_role() {
    let linkcard = Linkcard::new();
    linkcard.with_card();

    let declined = linkcard.purchase("30,000", DECLINED);
    assert_eq!(declined["approved"], false);
    assert_eq!(declined["available_before"], 10_000);

    let deposit = linkcard.json(&["atm", "deposit", "--card", "hanako", "--amount", "25000"]);
    assert_eq!(deposit["amount"], 25_000);
    assert_eq!(deposit["pool"], 25_000);
    assert_eq!(deposit["stored_in"], "bank applet");

    let approved = linkcard.purchase("30000", 0);
    assert_eq!(approved["approved"], true);
    assert_eq!(
        approved["accepted_tokens"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(approved["available_after"], 5_000);

    let (bank, credit) = linkcard.balances();
    assert_eq!(bank["personal"], 100_000);
    assert_eq!(bank["pool"], 25_000);
    assert_eq!(credit["outstanding"], 30_000);
    assert_eq!(credit["pending_credits"], 25_000);
    assert_eq!(credit["available"], 5_000);

    // Fig. 15: from the personal account straight into the credit applet.
    let direct = linkcard.json(&[
        "atm", "deposit", "--card", "hanako", "--amount", "1,000", "--from", "account", "--direct",
    ]);
    assert_eq!(direct["stored_in"], "credit applet");
    assert_eq!(direct["personal"], 99_000);
    let again = linkcard.purchase("6,000", 0);
    assert_eq!(again["available_after"], 0);
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let linkcard = Linkcard::new();
    linkcard.with_card();
    let before = linkcard.balances();

    linkcard.refused(
        &["bank", "cash-in", "--user", "U-NOBODY", "5"],
        "customer \"U-NOBODY\" is unknown",
    );
    linkcard.refused(
        &["bank", "balance", "--user", "U-NOBODY"],
        "customer \"U-NOBODY\" is unknown",
    );
    // Patent step 706: no contract with that credit company, no early payment.
    linkcard.refused(
        &[
            "atm", "deposit", "--card", "hanako", "--amount", "100", "--credit", "CRED0009",
        ],
        "no contract with credit company CRED0009: this bank cannot take an early payment for it",
    );
    for (amount, message) in [
        ("0", "the amount is zero"),
        ("abc", "\"abc\" is not an amount"),
        ("-5", "is negative"),
        ("1.5", "decimal places"),
    ] {
        linkcard.refused(
            &["atm", "deposit", "--card", "hanako", "--amount", amount],
            message,
        );
        linkcard.refused(&["bank", "cash-in", "--user", USER, amount], message);
    }
    linkcard.refused(
        &["atm", "deposit", "--card", "nobody", "--amount", "5"],
        "run `linkcard card issue --card nobody",
    );
    linkcard.refused(
        &[
            "card",
            "issue",
            "--card",
            "hanako",
            "--user",
            USER,
            "--cardholder",
            CARDHOLDER,
            "--pan",
            "4111111111111112",
            "--pin",
            "2468",
        ],
        "exists already",
    );
    let other_card = |user: &'static str, pin: &'static [&'static str]| {
        [
            &[
                "card",
                "issue",
                "--card",
                "other",
                "--user",
                user,
                "--cardholder",
                CARDHOLDER,
                "--pan",
                "4111111111111113",
            ][..],
            pin,
        ]
        .concat()
    };
    linkcard.refused(
        &other_card("U-NOBODY", &["--pin", "1357"]),
        "customer \"U-NOBODY\" is unknown",
    );
    linkcard.refused(&other_card(USER, &[]), "ask for a PIN: give --pin");
    assert!(!Path::new(&linkcard.path("cards/other.nvm")).exists());
    assert_eq!(linkcard.balances(), before);
}

#[test]
fn a_missing_organisation_says_which_command_makes_it() {
    let linkcard = Linkcard::new();
    linkcard.refused(
        &["bank", "balance", "--user", USER],
        "run `linkcard bank init --id BANK0001` first",
    );
    linkcard.refused(
        &["credit", "account", "--cardholder", CARDHOLDER],
        "run `linkcard credit init --id CRED0001` first",
    );
    linkcard.refused(
        &["pos", "purchase", "--card", "hanako", "--amount", "5"],
        "run `linkcard credit init --id CRED0001` first",
    );
    linkcard.json(&["bank", "init", "--id", "BANK0001"]);
    linkcard.refused(
        &[
            "card",
            "issue",
            "--card",
            "hanako",
            "--user",
            USER,
            "--cardholder",
            CARDHOLDER,
            "--pan",
            "4111111111111111",
        ],
        "run `linkcard credit init --id CRED0001` first",
    );
    linkcard.refused(
        &["bank", "init", "--id", "BANK0002"],
        "holds a bank already",
    );
    assert!(!Path::new(&linkcard.path("cards")).exists());
}

#[test]
fn completions_are_generated() {
    let linkcard = Linkcard::new();
    let output = linkcard.run(&["completions", "bash"]);
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("linkcard"));
}
