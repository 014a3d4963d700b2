//! `schemas/` is generated from the model; this fails when the checked-in copies are stale.

use scopetrail::model::{Dataset, schema};

#[test]
fn checked_in_schemas_match_the_model() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    for d in Dataset::ALL {
        let path = dir.join(format!("{}.json", d.name()));
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == schema::render(*d),
            "{} is stale: run `cargo run -- schema --write schemas`",
            path.display()
        );
    }
    let extra: Vec<_> = std::fs::read_dir(&dir)
        .expect("schemas/")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| {
            !Dataset::ALL
                .iter()
                .any(|d| format!("{}.json", d.name()) == *n)
        })
        .collect();
    assert!(extra.is_empty(), "schemas for no dataset: {extra:?}");
}

#[test]
fn every_column_has_a_description_and_names_are_unique() {
    for d in Dataset::ALL {
        let mut names = std::collections::BTreeSet::new();
        for c in d.columns() {
            assert!(!c.description.is_empty(), "{}.{}", d.name(), c.name);
            assert!(names.insert(c.name), "{}.{} twice", d.name(), c.name);
        }
    }
}
