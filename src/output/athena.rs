//! Athena DDL for the exported datasets: a `CREATE EXTERNAL TABLE` per dataset over its folder
//! under `v1/`, with partition projection that follows the object layout of `store::keys`, and
//! a `<dataset>_typed` view that gives the columns their types.
//!
//! Generated from the Frictionless Table Schema (`model::schema`), so it follows the CSV
//! contract without a second list of columns. OpenCSVSerDe reads every column as a string
//! (a numeric column with an empty cell fails the query), so the table declares all columns
//! STRING and the view converts them, empty cells becoming NULL.

use std::fmt::Write as _;

use serde_json::Value;

use crate::model::{Dataset, schema};
use crate::staging::Partition;
use crate::store::keys;

/// Where the store's objects are: `s3://<bucket>/<prefix>/`, the `[store]` table's `bucket`
/// and `prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    bucket: String,
    /// Empty, or ending with `/`.
    prefix: String,
}

impl Default for Location {
    /// Literal placeholders for the reader to replace.
    fn default() -> Self {
        Location {
            bucket: "<bucket>".into(),
            prefix: "<prefix>/".into(),
        }
    }
}

impl Location {
    /// `s3://bucket` or `s3://bucket/some/prefix` (a trailing `/` is optional).
    pub fn parse(url: &str) -> Result<Location, String> {
        let hint = "write it like s3://siem-evidence/scopetrail (the store's bucket and prefix)";
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| format!("{url:?} is not an s3:// URL; {hint}"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        // Names end up inside SQL string literals: nothing that could close one.
        let plain = |s: &str| {
            !s.chars()
                .any(|c| c == '\'' || c == '\\' || c.is_whitespace() || c.is_control())
        };
        if bucket.is_empty() || !plain(bucket) {
            return Err(format!("{url:?} has no usable bucket name; {hint}"));
        }
        let prefix = prefix.trim_matches('/');
        if !prefix.is_empty() && (!plain(prefix) || crate::store::check_key(prefix).is_err()) {
            return Err(format!(
                "{url:?}: the prefix has an empty segment, one starting with `.`, a quote or a space; {hint}"
            ));
        }
        Ok(Location {
            bucket: bucket.to_string(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
        })
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Empty, or ending with `/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `s3://<bucket>/<prefix>/`: where the store's keys start.
    pub fn root(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }
}

/// Partition columns: the `vendor=` and `tenant=` folders hold the rows' own `vendor` and
/// `tenant`, but Athena refuses a partition column named like a table column, so the table
/// calls them `partition_vendor` and `partition_tenant`; the typed view calls them `vendor`
/// and `tenant` again.
pub const PARTITIONS: &[(&str, &str)] = &[
    ("partition_vendor", "vendor"),
    ("partition_tenant", "tenant"),
    ("dt", "dt"),
];

/// First day partition projection considers; days without objects cost nothing.
pub const FIRST_DAY: &str = "2024-01-01";

/// The SerDe and its properties, as Athena's documentation writes them.
pub const SERDE: &str = "org.apache.hadoop.hive.serde2.OpenCSVSerde";

/// A dataset's folder: `s3://<bucket>/<prefix>/v1/<dataset>/`.
pub fn table_location(location: &Location, dataset: Dataset) -> String {
    let key = template_key(dataset);
    let folder = key.split("/vendor=").next().unwrap_or_default();
    format!("{}{folder}/", location.root())
}

/// `storage.location.template`: the folder of one partition's objects, with `${column}` for
/// each partition column. Built from `keys::object_key` itself so it cannot drift from what
/// the export writes.
pub fn location_template(location: &Location, dataset: Dataset) -> String {
    let key = template_key(dataset);
    let folder = key.rsplit_once('/').map_or("", |(folder, _)| folder);
    format!("{}{folder}/", location.root())
}

fn template_key(dataset: Dataset) -> String {
    let value = |column: &str| format!("${{{column}}}");
    let partition = Partition {
        dataset,
        vendor: value(PARTITIONS[0].0),
        tenant: value(PARTITIONS[1].0),
        day: value(PARTITIONS[2].0),
    };
    keys::object_key(&partition, "job", 0)
}

/// One field of the table schema: name, Table Schema type, required.
struct Field {
    name: String,
    ty: String,
    required: bool,
}

fn fields(dataset: Dataset) -> Vec<Field> {
    let schema = schema::table_schema(dataset);
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(String::from);
    schema
        .get("fields")
        .and_then(Value::as_array)
        .map(|fields| {
            fields
                .iter()
                .map(|f| Field {
                    name: text(f, "name").unwrap_or_default(),
                    ty: text(f, "type").unwrap_or_else(|| "string".into()),
                    required: f
                        .pointer("/constraints/required")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The table's column names, in CSV order.
pub fn column_names(dataset: Dataset) -> Vec<String> {
    fields(dataset).into_iter().map(|f| f.name).collect()
}

/// `CREATE EXTERNAL TABLE <dataset>`: every column STRING, partitions projected.
pub fn create_table(dataset: Dataset, location: &Location) -> String {
    let name = dataset.name();
    let mut out = String::new();
    let _ = writeln!(out, "CREATE EXTERNAL TABLE `{name}` (");
    let fields = fields(dataset);
    for (i, f) in fields.iter().enumerate() {
        let comma = if i + 1 < fields.len() { "," } else { "" };
        let _ = writeln!(out, "  `{}` STRING{comma}", f.name);
    }
    out.push_str(")\nPARTITIONED BY (\n");
    for (i, (column, _)) in PARTITIONS.iter().enumerate() {
        let comma = if i + 1 < PARTITIONS.len() { "," } else { "" };
        let _ = writeln!(out, "  `{column}` STRING{comma}");
    }
    let _ = write!(
        out,
        "\
)
ROW FORMAT SERDE '{SERDE}'
WITH SERDEPROPERTIES (
  'separatorChar' = ',',
  'quoteChar' = '\"',
  'escapeChar' = '\\\\'
)
STORED AS TEXTFILE
LOCATION '{}'
TBLPROPERTIES (
  'skip.header.line.count' = '1',
  'projection.enabled' = 'true',
  'projection.{vendor}.type' = 'injected',
  'projection.{tenant}.type' = 'injected',
  'projection.{dt}.type' = 'date',
  'projection.{dt}.format' = 'yyyy-MM-dd',
  'projection.{dt}.range' = '{FIRST_DAY},NOW',
  'projection.{dt}.interval' = '1',
  'projection.{dt}.interval.unit' = 'DAYS',
  'storage.location.template' = '{}'
);
",
        table_location(location, dataset),
        location_template(location, dataset),
        vendor = PARTITIONS[0].0,
        tenant = PARTITIONS[1].0,
        dt = PARTITIONS[2].0,
    );
    out
}

/// A column of the view: the string cell converted to its type; empty cells of optional
/// columns become NULL, and a cell that does not convert is NULL rather than a failed query.
/// String columns stay as read (an empty list and an unknown one both read as empty).
fn typed(f: &Field) -> String {
    if !matches!(f.ty.as_str(), "integer" | "number" | "boolean" | "datetime") {
        return format!("\"{}\"", f.name);
    }
    let cell = if f.required {
        format!("\"{}\"", f.name)
    } else {
        format!("NULLIF(\"{}\", '')", f.name)
    };
    match f.ty.as_str() {
        "integer" => format!("TRY_CAST({cell} AS BIGINT)"),
        "number" => format!("TRY_CAST({cell} AS DOUBLE)"),
        "boolean" => format!("TRY_CAST({cell} AS BOOLEAN)"),
        // RFC 3339 with `Z`, which CAST does not read: parsed, then kept as UTC wall time.
        "datetime" => format!("TRY(CAST(from_iso8601_timestamp({cell}) AS TIMESTAMP))"),
        _ => cell,
    }
}

/// `CREATE OR REPLACE VIEW <dataset>_typed`: the table's columns with their types, in order,
/// `vendor` and `tenant` taken from the partitions (the same values) so that filtering on them
/// prunes, then `dt`.
pub fn typed_view(dataset: Dataset) -> String {
    let name = dataset.name();
    let mut columns: Vec<String> = fields(dataset)
        .iter()
        .map(|f| {
            let partition = PARTITIONS
                .iter()
                .find(|(column, key)| *key == f.name && *column != f.name);
            match partition {
                Some((column, _)) => format!("\"{column}\" AS \"{}\"", f.name),
                None => match typed(f) {
                    same if same == format!("\"{}\"", f.name) => same,
                    cast => format!("{cast} AS \"{}\"", f.name),
                },
            }
        })
        .collect();
    columns.push(format!("\"{}\"", PARTITIONS[2].0));
    let mut out = format!("CREATE OR REPLACE VIEW \"{name}_typed\" AS\nSELECT\n");
    for (i, c) in columns.iter().enumerate() {
        let comma = if i + 1 < columns.len() { "," } else { "" };
        let _ = writeln!(out, "  {c}{comma}");
    }
    let _ = writeln!(out, "FROM \"{name}\";");
    out
}

/// The table and its view, for one dataset.
pub fn render(dataset: Dataset, location: &Location) -> String {
    format!(
        "-- scopetrail {name} (v1): table over {folder}\n{table}\n{view}",
        name = dataset.name(),
        folder = table_location(location, dataset),
        table = create_table(dataset, location),
        view = typed_view(dataset),
    )
}

/// Every exported dataset, separated by blank lines.
pub fn render_all(location: &Location) -> String {
    Dataset::ALL
        .iter()
        .map(|d| render(*d, location))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn location() -> Location {
        Location::parse("s3://siem-evidence/scopetrail").expect("valid")
    }

    #[test]
    fn the_table_names_every_schema_column_in_order() {
        for d in Dataset::ALL {
            let ddl = create_table(*d, &location());
            let declared: Vec<&str> = ddl
                .lines()
                .skip(1)
                .take_while(|l| !l.starts_with(')'))
                .map(|l| l.trim().trim_end_matches(','))
                .collect();
            let want: Vec<String> = d
                .columns()
                .map(|c| format!("`{}` STRING", c.name))
                .collect();
            assert_eq!(declared, want, "{}", d.name());
            assert_eq!(column_names(*d).len(), d.columns().count());
        }
    }

    #[test]
    fn partitions_follow_the_object_layout() {
        let loc = location();
        for d in Dataset::ALL {
            let p = Partition {
                dataset: *d,
                vendor: "oracle_fusion".into(),
                tenant: "acme-prod".into(),
                day: "2026-03-05".into(),
            };
            let key = keys::object_key(&p, "weekly", 42);
            let folder = format!(
                "{}{}",
                loc.root(),
                &key[..=key.rfind('/').expect("a folder")]
            );
            let template = location_template(&loc, *d)
                .replace("${partition_vendor}", &p.vendor)
                .replace("${partition_tenant}", &p.tenant)
                .replace("${dt}", &p.day);
            assert_eq!(template, folder, "{}", d.name());
            assert!(folder.starts_with(&table_location(&loc, *d)));
            assert_eq!(
                table_location(&loc, *d),
                format!("s3://siem-evidence/scopetrail/v1/{}/", d.name())
            );
            let ddl = create_table(*d, &loc);
            for (column, _) in PARTITIONS {
                assert!(ddl.contains(&format!("  `{column}` STRING")), "{column}");
                assert!(
                    location_template(&loc, *d).contains(&format!("${{{column}}}")),
                    "{column}"
                );
            }
            assert!(ddl.contains(&format!(
                "'storage.location.template' = '{}'",
                location_template(&loc, *d)
            )));
        }
    }

    #[test]
    fn partition_columns_do_not_clash_with_table_columns() {
        for d in Dataset::ALL {
            let names = column_names(*d);
            for (column, _) in PARTITIONS {
                assert!(!names.iter().any(|n| n == column), "{}.{column}", d.name());
            }
        }
    }

    #[test]
    fn placeholders_stay_literal_without_a_location() {
        let ddl = create_table(Dataset::Denials, &Location::default());
        assert!(ddl.contains("LOCATION 's3://<bucket>/<prefix>/v1/denials/'"));
        assert!(ddl.contains(
            "'storage.location.template' = 's3://<bucket>/<prefix>/v1/denials/vendor=${partition_vendor}/tenant=${partition_tenant}/dt=${dt}/'"
        ));
    }

    #[test]
    fn locations_parse() {
        let root = |s: &str| Location::parse(s).map(|l| l.root());
        assert_eq!(root("s3://b/p"), Ok("s3://b/p/".into()));
        assert_eq!(root("s3://b/p/q/"), Ok("s3://b/p/q/".into()));
        assert_eq!(root("s3://b"), Ok("s3://b/".into()));
        assert_eq!(root("s3://b/"), Ok("s3://b/".into()));
        for bad in [
            "b/p",
            "s3://",
            "s3:///p",
            "s3://b/p//q",
            "s3://b/it's",
            "s3://b/.x",
        ] {
            assert!(root(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_view_types_numbers_booleans_and_times() {
        let view = typed_view(Dataset::WebhookFailures);
        assert!(view.contains("  TRY_CAST(\"time\" AS BIGINT) AS \"time\",\n"));
        assert!(view.contains(
            "  TRY(CAST(from_iso8601_timestamp(\"time_dt\") AS TIMESTAMP)) AS \"time_dt\",\n"
        ));
        assert!(view.contains("  \"partition_vendor\" AS \"vendor\",\n"));
        assert!(view.contains("  \"partition_tenant\" AS \"tenant\",\n"));
        assert!(
            view.contains(
                "  TRY_CAST(NULLIF(\"http_status\", '') AS BIGINT) AS \"http_status\",\n"
            )
        );
        assert!(
            view.contains("  TRY_CAST(NULLIF(\"redelivery\", '') AS BOOLEAN) AS \"redelivery\",\n")
        );
        assert!(view.contains("  \"error_message\",\n"));
        assert!(view.ends_with("  \"dt\"\nFROM \"webhook_failures\";\n"));
        // Every column once, in order, then dt.
        let names: Vec<String> = view
            .lines()
            .skip(2)
            .take_while(|l| !l.starts_with("FROM"))
            .map(|l| {
                let l = l.trim().trim_end_matches(',');
                let alias = l.rsplit(" AS ").next().unwrap_or(l);
                alias.trim_matches('"').to_string()
            })
            .collect();
        let mut want = column_names(Dataset::WebhookFailures);
        want.push("dt".into());
        assert_eq!(names, want);
    }
}
