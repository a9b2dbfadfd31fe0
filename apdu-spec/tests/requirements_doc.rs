//! The security requirements documented in `docs/SECURE-CHANNEL.md` are the ones the card enforces: each row
//! of the table is rendered from `apdu_spec::gp::REQUIREMENTS`.

use apdu_spec::gp::REQUIREMENTS;

#[test]
fn the_documented_table_is_the_enforced_one() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/SECURE-CHANNEL.md"
    ))
    .expect("docs/SECURE-CHANNEL.md");
    for (name, requirement) in REQUIREMENTS {
        let mut needs = String::new();
        requirement.describe(&mut needs).unwrap();
        let row = format!("| {name} | {needs} |");
        assert!(
            doc.contains(&row),
            "docs/SECURE-CHANNEL.md lacks the row\n{row}"
        );
    }
}
