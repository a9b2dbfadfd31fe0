//! The `linkcard` binary on a temporary data directory, shared by the tests that run it command by command.
#![allow(dead_code)]

use std::path::Path;
use std::process::Output;

pub use serde_json::Value;

pub const USER: &str = "U-000042";
pub const CARDHOLDER: &str = "CH-000042";

/// The binary on one data directory.
pub struct Linkcard {
    pub dir: tempfile::TempDir,
}

impl Linkcard {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    pub fn run(&self, args: &[&str]) -> Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_linkcard"))
            .arg("--data-dir")
            .arg(self.dir.path())
            .args(args)
            .env_remove("LINKCARD_DATA_DIR")
            .output()
            .expect("linkcard runs")
    }

    /// Runs `args --json`, expects exit status `code`, and gives the JSON printed.
    pub fn json_with_status(&self, args: &[&str], code: i32) -> Value {
        let output = self.run(&[args, &["--json"]].concat());
        assert_eq!(
            output.status.code(),
            Some(code),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("one JSON object")
    }

    pub fn json(&self, args: &[&str]) -> Value {
        self.json_with_status(args, 0)
    }

    /// Runs `args`, expects a non-zero exit status and `message` on standard error.
    pub fn refused(&self, args: &[&str], message: &str) {
        let output = self.run(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_ne!(output.status.code(), Some(0), "{args:?} succeeded");
        assert!(
            stderr.contains(message),
            "{args:?}: {stderr:?} lacks {message:?}"
        );
    }

    /// Both organisations, their contract, the customer with money, the cardholder.
    pub fn organisations(&self) {
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
    pub fn with_card(&self) {
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

    pub fn purchase(&self, amount: &str, code: i32) -> Value {
        self.json_with_status(
            &[
                "pos", "purchase", "--card", "hanako", "--amount", amount, "--pin", "2468",
            ],
            code,
        )
    }

    pub fn balances(&self) -> (Value, Value) {
        (
            self.json(&["bank", "balance", "--user", USER]),
            self.json(&["credit", "account", "--cardholder", CARDHOLDER]),
        )
    }
}
