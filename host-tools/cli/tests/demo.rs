//! `linkcard demo` end to end, as the README runs it: every step as the patent says (the purchase declined, the
//! deposit, the same purchase approved at once, the replayed token refused), exit status 0, and the JSON report
//! carrying the balances.

use std::process::Command;

#[test]
fn the_demo_tells_the_whole_story() {
    let dir = std::env::temp_dir().join(format!("linkcard-demo-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let output = Command::new(env!("CARGO_BIN_EXE_linkcard"))
        .args(["demo", "--json", "--dir"])
        .arg(&dir)
        .output()
        .expect("linkcard runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}: {stderr}",
        output.status
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    let steps = report["steps"].as_array().expect("steps");
    let kinds: Vec<&str> = steps.iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "key exchange",
            "card issued",
            "card issued",
            "card issued",
            "purchase",
            "deposit",
            "purchase",
            "purchase",
            "purchase",
            "deposit",
            "purchase",
            "statement",
            "settlement",
            "reconciliation",
        ]
    );
    let purchases: Vec<&serde_json::Value> =
        steps.iter().filter(|s| s["step"] == "purchase").collect();
    let approved: Vec<bool> = purchases
        .iter()
        .map(|p| p["data"]["approved"].as_bool().unwrap())
        .collect();
    assert_eq!(approved, [false, true, false, true, true]);
    // The deposit's token was reflected at once as a pending credit; the replayed one was refused.
    let approved = &purchases[1]["data"];
    assert_eq!(
        approved["accepted_tokens"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(approved["pending_credits_after"], 25_000);
    assert_eq!(approved["available_after"], 10_000 + 25_000 - 30_000);
    assert_eq!(
        purchases[2]["data"]["refused_tokens"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    // Settlement day: Hanako from her pool deposit, Taro from his account, Jiro short; Jiro's unbacked
    // reflection flagged, and what everyone now owes.
    let settlement = &steps[12]["data"];
    assert_eq!(
        (
            settlement["from_pool"].as_u64(),
            settlement["from_personal"].as_u64()
        ),
        (Some(25_000), Some(5_000 + 8_000 + 8_000))
    );
    assert_eq!(settlement["shortfall"], 1_000);
    assert_eq!(
        (
            settlement["accepted"].as_u64(),
            settlement["partial"].as_u64()
        ),
        (Some(2), Some(1))
    );
    let reconciliation = &steps[13]["data"];
    assert_eq!(reconciliation["received"], 46_000);
    assert_eq!(reconciliation["reflected_amount_posted"], 25_000);
    let flagged = reconciliation["flagged"].as_array().expect("flagged");
    assert_eq!(flagged.len(), 1);
    assert_eq!(flagged[0]["cardholder"], "CH-000044");
    assert_eq!(flagged[0]["amount"], 6_000);
    assert_eq!(flagged[0]["bank_id"], "BANK0001");
    // The databases and the cards' memories are in the directory.
    for file in [
        "bank/bank.sqlite",
        "credit/credit.sqlite",
        "card.nvm",
        "taro.nvm",
        "jiro.nvm",
    ] {
        assert!(dir.join(file).exists(), "{file}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_reader_that_closes_the_pipe_early_is_no_error() {
    let dir = std::env::temp_dir().join(format!("linkcard-demo-pipe-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut child = Command::new(env!("CARGO_BIN_EXE_linkcard"))
        .args(["demo", "--dir"])
        .arg(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("linkcard runs");
    // Like `linkcard demo | head -0`: nobody reads what it prints.
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("it ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}: {stderr}",
        output.status
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
