//! The role commands through the `linkcard` binary, one process per command, state in a temporary data
//! directory: the patent's story step by step, and bad input refused with a clear message and nothing changed.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

const USER: &str = "U-000042";
const CARDHOLDER: &str = "CH-000042";

/// The binary on one data directory.
struct Linkcard {
    dir: tempfile::TempDir,
}

impl Linkcard {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn run(&self, args: &[&str]) -> Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_linkcard"))
            .arg("--data-dir")
            .arg(self.dir.path())
            .args(args)
            .env_remove("LINKCARD_DATA_DIR")
            .output()
            .expect("linkcard runs")
    }

    /// Runs `args --json`, expects exit status `code`, and gives the JSON printed.
    fn json_with_status(&self, args: &[&str], code: i32) -> Value {
        let output = self.run(&[args, &["--json"]].concat());
        assert_eq!(
            output.status.code(),
            Some(code),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("one JSON object")
    }

    fn json(&self, args: &[&str]) -> Value {
        self.json_with_status(args, 0)
    }

    /// Runs `args`, expects a non-zero exit status and `message` on standard error.
    fn refused(&self, args: &[&str], message: &str) {
        let output = self.run(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_ne!(output.status.code(), Some(0), "{args:?} succeeded");
        assert!(
            stderr.contains(message),
            "{args:?}: {stderr:?} lacks {message:?}"
        );
    }

    /// Both organisations, their contract, the customer with money, the cardholder.
    fn organisations(&self) {
        self.json(&["bank", "init", "--id", "BANK0001"]);
        self.json(&["credit", "init", "--id", "CRED0001"]);
        let offer = self.json(&[
            "bank",
            "offer",
            "--credit",
            "CRED0001",
            "--out",
            &self.path("offer.json"),
        ]);
        let accepted = self.json(&[
            "credit",
            "accept",
            &self.path("offer.json"),
            "--bank-identity",
            &self.path("bank/identity.pub"),
            "--out",
            &self.path("acceptance.json"),
        ]);
        assert_eq!(
            accepted["bank_identity_fingerprint"],
            offer["identity_fingerprint"]
        );
        let imported = self.json(&[
            "bank",
            "import-acceptance",
            &self.path("acceptance.json"),
            "--credit-identity",
            &self.path("credit/identity.pub"),
        ]);
        assert_eq!(
            imported["credit_identity_fingerprint"],
            accepted["identity_fingerprint"]
        );
        self.json(&[
            "bank",
            "customer",
            "add",
            "--user",
            USER,
            "--name",
            "Hanako Yamada",
            "--account",
            "0001-234-5678901",
        ]);
        let cash = self.json(&["bank", "cash-in", "--user", USER, "100,000"]);
        assert_eq!(cash["personal"], 100_000);
        self.json(&[
            "credit",
            "cardholder",
            "add",
            "--id",
            CARDHOLDER,
            "--name",
            "Hanako Yamada",
            "--limit",
            "10,000",
        ]);
    }

    /// [`Self::organisations`] and the card `hanako`.
    fn with_card(&self) {
        self.organisations();
        let card = self.json(&[
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
            "--pin",
            "2468",
        ]);
        assert_eq!(card["pan"], "4111111111111111");
        assert!(Path::new(&self.path("cards/hanako.nvm")).exists());
    }

    fn purchase(&self, amount: &str, code: i32) -> Value {
        self.json_with_status(
            &[
                "pos", "purchase", "--card", "hanako", "--amount", amount, "--pin", "2468",
            ],
            code,
        )
    }

    fn balances(&self) -> (Value, Value) {
        (
            self.json(&["bank", "balance", "--user", USER]),
            self.json(&["credit", "account", "--cardholder", CARDHOLDER]),
        )
    }
}

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
