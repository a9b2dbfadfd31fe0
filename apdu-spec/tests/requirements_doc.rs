//! The security requirements documented in `docs/SECURE-CHANNEL.md` are the ones the card enforces: each row
//! of each table is rendered from `apdu_spec::gp::REQUIREMENTS`, `apdu_spec::bank::REQUIREMENTS` and
//! `apdu_spec::credit::REQUIREMENTS`, and appears in the section that follows that table's name.

use apdu_spec::scp11::Requirement;

fn check(table: &str, requirements: &[(&str, Requirement)]) {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/SECURE-CHANNEL.md"
    ))
    .expect("docs/SECURE-CHANNEL.md");
    let marker = format!("`{table}`");
    let start = doc
        .find(&marker)
        .unwrap_or_else(|| panic!("docs/SECURE-CHANNEL.md does not name {marker}"));
    // The section runs to the next table name (or the end).
    let section = &doc[start..];
    let end = section[marker.len()..]
        .find("::REQUIREMENTS`")
        .map_or(section.len(), |i| i + marker.len());
    let section = &section[..end];
    for (name, requirement) in requirements {
        let mut needs = String::new();
        requirement.describe(&mut needs).unwrap();
        let row = format!("| {name} | {needs} |");
        assert!(
            section.contains(&row),
            "docs/SECURE-CHANNEL.md lacks the row under {marker}\n{row}"
        );
    }
}

#[test]
fn the_documented_table_is_the_enforced_one() {
    check("apdu_spec::gp::REQUIREMENTS", &apdu_spec::gp::REQUIREMENTS);
}

#[test]
fn the_documented_bank_table_is_the_enforced_one() {
    check(
        "apdu_spec::bank::REQUIREMENTS",
        &apdu_spec::bank::REQUIREMENTS,
    );
}

#[test]
fn the_documented_credit_table_is_the_enforced_one() {
    check(
        "apdu_spec::credit::REQUIREMENTS",
        &apdu_spec::credit::REQUIREMENTS,
    );
}
