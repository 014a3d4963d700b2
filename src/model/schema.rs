//! Frictionless Table Schemas, generated from the columns so `schemas/` can never drift from
//! what the CSV writer does (a test fails when the checked-in copies are stale).

use serde_json::{Value, json};

use super::{Column, Dataset, Kind};
use crate::output::csv::MAX_TEXT_BYTES;

/// Columns that every row fills.
const REQUIRED: &[&str] = &[
    "time",
    "time_dt",
    "event_uid",
    "vendor",
    "tenant",
    "environment",
    "source",
];

pub fn table_schema(dataset: Dataset) -> Value {
    let fields: Vec<Value> = dataset.columns().map(field).collect();
    json!({
        "name": dataset.name(),
        "title": format!("scopetrail {} (v1)", dataset.name()),
        "x-ocsf-class": dataset.ocsf_class(),
        "x-csv-dialect": {
            "delimiter": ",",
            "quoteChar": "\"",
            "lineTerminator": "\n",
            "header": true,
            "encoding": "utf-8"
        },
        "fields": fields,
        "primaryKey": ["event_uid"],
        "missingValues": [""],
    })
}

fn field(column: &Column) -> Value {
    let mut f = json!({
        "name": column.name,
        "description": column.description,
    });
    let obj = f.as_object_mut().expect("json! object literal");
    let (ty, format) = match column.kind {
        Kind::EpochMs | Kind::Integer => ("integer", None),
        Kind::DateTime => ("datetime", None),
        Kind::Uuid => ("string", Some("uuid")),
        Kind::Boolean => ("boolean", None),
        Kind::Id | Kind::Text | Kind::List => ("string", None),
    };
    obj.insert("type".into(), ty.into());
    if let Some(format) = format {
        obj.insert("format".into(), format.into());
    }
    if column.kind == Kind::Boolean {
        obj.insert("trueValues".into(), json!(["true"]));
        obj.insert("falseValues".into(), json!(["false"]));
    }
    let mut constraints = serde_json::Map::new();
    if REQUIRED.contains(&column.name) {
        constraints.insert("required".into(), true.into());
    }
    if column.kind.neutralized() {
        constraints.insert("maxLength".into(), MAX_TEXT_BYTES.into());
        // SIEM pipelines can strip the prefix with ^'(?=[=+\-@]).
        obj.insert("x-formula-neutralized".into(), true.into());
    }
    if !constraints.is_empty() {
        obj.insert("constraints".into(), constraints.into());
    }
    if column.kind == Kind::List {
        obj.insert(
            "x-list".into(),
            json!({"separator": " ", "item-encoding": "percent-encoded space, % and control characters"}),
        );
    }
    if let Some(ocsf) = column.ocsf {
        obj.insert("ocsf".into(), ocsf.into());
    }
    if let Some(ecs) = column.ecs {
        obj.insert("ecs".into(), ecs.into());
    }
    if column.personal {
        obj.insert("x-personal-data".into(), true.into());
    }
    f
}

/// The checked-in file's text for a dataset.
pub fn render(dataset: Dataset) -> String {
    let mut text = serde_json::to_string_pretty(&table_schema(dataset)).unwrap_or_default();
    text.push('\n');
    text
}
