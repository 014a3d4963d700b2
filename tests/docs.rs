//! The documentation names what the code has.

#[test]
fn every_failpoint_is_documented_and_every_documented_one_exists() {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/operations.md"),
    )
    .expect("docs/operations.md");
    let documented: Vec<&str> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .filter(|name| name.contains('.') && !name.contains(' '))
        .collect();
    assert_eq!(
        documented,
        scopetrail::failpoint::ALL,
        "docs/operations.md and failpoint::ALL differ"
    );
}
