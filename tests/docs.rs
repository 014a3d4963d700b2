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

mod siem {
    //! docs/siem.md against the code: the Athena DDL, the example key, the dataset prefixes,
    //! the IAM policy and the Datadog column lists.

    use scopetrail::model::Dataset;
    use scopetrail::output::athena::{self, Location};
    use scopetrail::staging::Partition;
    use scopetrail::store::keys;

    fn doc() -> String {
        std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/siem.md"),
        )
        .expect("docs/siem.md")
    }

    /// The text between `<!-- {tag}...-->` and `<!-- /{tag} -->`: (the rest of the opening
    /// comment, the body), for every such block.
    fn blocks(doc: &str, tag: &str) -> Vec<(String, String)> {
        let open = format!("<!-- {tag}");
        let close = format!("<!-- /{tag} -->");
        let mut out = Vec::new();
        let mut rest = doc;
        while let Some(at) = rest.find(&open) {
            let after = &rest[at + open.len()..];
            let end_of_comment = after.find("-->").expect("a closed comment");
            let args = after[..end_of_comment].trim().to_string();
            let body_start = &after[end_of_comment + 3..];
            let body_end = body_start.find(&close).expect("a closing marker");
            out.push((args, body_start[..body_end].to_string()));
            rest = &body_start[body_end..];
        }
        out
    }

    /// The contents of the only fenced code block in `body`.
    fn fenced(body: &str) -> String {
        let start = body.find("```").expect("a code block");
        let after = &body[start + 3..];
        let first_line_end = after.find('\n').expect("a fence line");
        let code = &after[first_line_end + 1..];
        let end = code.rfind("```").expect("a closing fence");
        code[..end].to_string()
    }

    #[test]
    fn the_athena_ddl_is_what_the_generator_prints() {
        let doc = doc();
        let found = blocks(&doc, "athena-ddl");
        assert!(!found.is_empty(), "no <!-- athena-ddl --> block");
        for (args, body) in found {
            let (name, url) = args
                .split_once(' ')
                .expect("<!-- athena-ddl DATASET S3_URL -->");
            let dataset = Dataset::from_name(name).expect("a dataset");
            let location = Location::parse(url).expect("an s3:// URL");
            let want = athena::render(dataset, &location);
            assert!(
                fenced(&body) == want,
                "docs/siem.md: the Athena DDL for {name} is stale; paste the output of \
                 `scopetrail schema --athena {name} --location {url}`:\n{want}"
            );
            // And the command line prints the same.
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_scopetrail"))
                .args(["schema", "--athena", name, "--location", url])
                .output()
                .expect("runs");
            assert!(out.status.success(), "{out:?}");
            assert_eq!(String::from_utf8_lossy(&out.stdout), want);
        }
    }

    #[test]
    fn the_example_key_is_what_the_export_writes() {
        let doc = doc();
        let found = blocks(&doc, "example-key");
        assert_eq!(found.len(), 1, "one <!-- example-key --> block");
        let full = fenced(&found[0].1).trim().to_string();
        // <prefix>/v1/<dataset>/vendor=<v>/tenant=<t>/dt=<day>/<dataset>-<job>-eNNNNNN.csv.gz
        let key = &full[full.find("v1/").expect("a key under v1/")..];
        let parts: Vec<&str> = key.split('/').collect();
        assert_eq!(parts.len(), 6, "{key}");
        let value = |s: &str, name: &str| {
            s.strip_prefix(&format!("{name}="))
                .unwrap_or_else(|| panic!("{key}: expected {name}=..."))
                .to_string()
        };
        let dataset = Dataset::from_name(parts[1]).expect("a dataset");
        let partition = Partition {
            dataset,
            vendor: value(parts[2], "vendor"),
            tenant: value(parts[3], "tenant"),
            day: value(parts[4], "dt"),
        };
        let file = parts[5]
            .strip_prefix(&format!("{}-", dataset.name()))
            .and_then(|f| f.strip_suffix(".csv.gz"))
            .expect("<dataset>-<job>-e<export>.csv.gz");
        let (job, export) = file.rsplit_once("-e").expect("<job>-e<export>");
        let export: u64 = export.parse().expect("an export number");
        assert_eq!(key, keys::object_key(&partition, job, export));
        // The same key through the Athena location template.
        let prefix = &full[..full.find("v1/").unwrap_or_default()];
        let location = Location::parse(&format!("s3://siem-evidence/{prefix}")).expect("valid");
        let folder = athena::location_template(&location, dataset)
            .replace("${partition_vendor}", &partition.vendor)
            .replace("${partition_tenant}", &partition.tenant)
            .replace("${dt}", &partition.day);
        assert_eq!(
            format!("{folder}{}", parts[5]),
            format!("s3://siem-evidence/{full}")
        );
    }

    #[test]
    fn every_dataset_in_an_example_prefix_exists() {
        let doc = doc();
        let hidden = [
            keys::manifest_key("j", 1),
            keys::window_key("j", Default::default(), Default::default()),
            keys::run_key("r"),
        ];
        let mut seen = 0;
        for (at, _) in doc.match_indices("v1/") {
            let name: String = doc[at + 3..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if name.is_empty() || !doc[at + 3 + name.len()..].starts_with('/') {
                continue; // `v1/` itself, `v1/<dataset>/`
            }
            if name.starts_with('_') {
                assert!(
                    hidden.iter().any(|k| k.starts_with(&format!("v1/{name}/"))),
                    "docs/siem.md names v1/{name}/, which scopetrail does not write"
                );
            } else {
                assert!(
                    Dataset::from_name(&name).is_some(),
                    "docs/siem.md names v1/{name}/, which is no dataset"
                );
                seen += 1;
            }
        }
        assert!(seen > 0);
        // And the notification section lists every dataset.
        for d in Dataset::ALL {
            assert!(
                doc.contains(&format!("scopetrail/v1/{}/", d.name())),
                "docs/siem.md: no notification prefix for {}",
                d.name()
            );
        }
    }

    #[test]
    fn the_iam_policy_never_deletes_evidence() {
        let doc = doc();
        let found = blocks(&doc, "iam-policy");
        assert_eq!(found.len(), 1, "one <!-- iam-policy --> block");
        let policy: serde_json::Value =
            serde_json::from_str(&fenced(&found[0].1)).expect("the policy is JSON");
        let list = |v: &serde_json::Value| -> Vec<String> {
            match v {
                serde_json::Value::String(s) => vec![s.clone()],
                serde_json::Value::Array(a) => a
                    .iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect(),
                _ => Vec::new(),
            }
        };
        let mut allowed = Vec::new();
        let mut denied_v1_delete = false;
        for st in policy["Statement"].as_array().expect("statements") {
            let actions = list(&st["Action"]);
            let resources = list(&st["Resource"]);
            match st["Effect"].as_str() {
                Some("Allow") => {
                    for a in &actions {
                        assert!(!a.contains('*'), "no wildcard actions: {a}");
                        if a == "s3:DeleteObject" {
                            for r in &resources {
                                assert!(r.ends_with("/_state/*"), "delete on {r}");
                            }
                        }
                        allowed.push(a.clone());
                    }
                    if actions.iter().any(|a| a == "s3:ListBucket") {
                        assert!(
                            st["Condition"]["StringLike"]["s3:prefix"].is_array(),
                            "ListBucket limited to the prefix"
                        );
                    }
                }
                Some("Deny") => {
                    denied_v1_delete |= actions.iter().any(|a| a == "s3:DeleteObject")
                        && resources.iter().any(|r| r.ends_with("/v1/*"));
                }
                other => panic!("Effect {other:?}"),
            }
        }
        allowed.sort();
        assert_eq!(
            allowed,
            [
                "s3:AbortMultipartUpload",
                "s3:DeleteObject",
                "s3:GetObject",
                "s3:ListBucket",
                "s3:ListBucketMultipartUploads",
                "s3:PutObject",
            ]
        );
        assert!(denied_v1_delete, "an explicit deny of deletes under v1/");
    }

    #[test]
    fn datadog_column_lists_match_the_datasets() {
        let doc = doc();
        let mut seen = 0;
        for line in doc.lines() {
            let Some((rule, rest)) = line.split_once(" %{data:") else {
                continue;
            };
            let columns = rest
                .split_once("csv(\"")
                .and_then(|(_, r)| r.split_once('"'))
                .map(|(c, _)| c)
                .expect("csv(\"...\")");
            let dataset = Dataset::from_name(rule).expect("rules are named after datasets");
            let want: Vec<&str> = dataset.columns().map(|c| c.name).collect();
            assert_eq!(columns, want.join(","), "{rule}");
            seen += 1;
        }
        assert!(seen > 0, "no Datadog grok rule found");
    }
}
