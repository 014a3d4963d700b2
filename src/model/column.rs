//! Column descriptors: what the CSV writer, the staging log and `schemas/` know about a column.

/// How a column's values are typed, rendered and protected in CSV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Integer epoch milliseconds.
    EpochMs,
    /// RFC 3339 UTC with milliseconds and `Z`; held as epoch milliseconds.
    DateTime,
    /// A UUID scopetrail derived.
    Uuid,
    /// An identifier (ours or the vendor's): never altered, so joins keep working. Control
    /// characters are percent-encoded, because a line break would split the row for every
    /// line-oriented SIEM parser.
    Id,
    /// Free text, vendor-supplied or ours: neutralized (DESIGN §4).
    Text,
    Integer,
    Boolean,
    /// Space-separated items, each with space, `%` and control characters percent-encoded;
    /// neutralized like text because items are vendor-supplied.
    List,
}

impl Kind {
    /// Whether a value may be changed by formula-injection neutralization.
    pub fn neutralized(self) -> bool {
        matches!(self, Kind::Text | Kind::List)
    }

    /// What a cell of this kind holds, for errors.
    pub fn expected(self) -> &'static str {
        match self {
            Kind::EpochMs | Kind::Integer => "an integer",
            Kind::DateTime => "an RFC 3339 time",
            Kind::Uuid => "a UUID",
            Kind::Boolean => "true or false",
            Kind::Id | Kind::Text => "text",
            Kind::List => "a list",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
    pub description: &'static str,
    /// OCSF attribute path, a hint for SIEM mappings.
    pub ocsf: Option<&'static str>,
    /// Elastic Common Schema field, a hint for SIEM mappings.
    pub ecs: Option<&'static str>,
    /// Personal data (emails, user names, IP addresses): subject to `[privacy]` options.
    pub personal: bool,
}

impl Column {
    pub const fn new(kind: Kind, description: &'static str) -> Self {
        Column {
            name: "",
            kind,
            description,
            ocsf: None,
            ecs: None,
            personal: false,
        }
    }
    pub const fn named(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }
    pub const fn ocsf(mut self, path: &'static str) -> Self {
        self.ocsf = Some(path);
        self
    }
    pub const fn ecs(mut self, field: &'static str) -> Self {
        self.ecs = Some(field);
        self
    }
    pub const fn personal(mut self) -> Self {
        self.personal = true;
        self
    }
}

pub const fn text(description: &'static str) -> Column {
    Column::new(Kind::Text, description)
}
pub const fn id(description: &'static str) -> Column {
    Column::new(Kind::Id, description)
}
pub const fn int(description: &'static str) -> Column {
    Column::new(Kind::Integer, description)
}
pub const fn boolean(description: &'static str) -> Column {
    Column::new(Kind::Boolean, description)
}
pub const fn datetime(description: &'static str) -> Column {
    Column::new(Kind::DateTime, description)
}
pub const fn list(description: &'static str) -> Column {
    Column::new(Kind::List, description)
}

/// A value on its way to a CSV cell; the column's `Kind` decides how it is rendered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    Null,
    Int(i64),
    Bool(bool),
    Str(&'a str),
    List(&'a [String]),
    Uuid(&'a uuid::Uuid),
}

/// Field types a dataset struct may use, and how each becomes a cell.
pub trait ToCell {
    fn to_cell(&self) -> Cell<'_>;
    /// Lets privacy options reach string fields by column name without a second field list.
    fn as_text_mut(&mut self) -> Option<&mut Option<String>> {
        None
    }
}

impl ToCell for Option<String> {
    fn to_cell(&self) -> Cell<'_> {
        self.as_deref().map_or(Cell::Null, Cell::Str)
    }
    fn as_text_mut(&mut self) -> Option<&mut Option<String>> {
        Some(self)
    }
}

impl ToCell for String {
    fn to_cell(&self) -> Cell<'_> {
        Cell::Str(self)
    }
}

impl ToCell for Option<i64> {
    fn to_cell(&self) -> Cell<'_> {
        self.map_or(Cell::Null, Cell::Int)
    }
}

impl ToCell for i64 {
    fn to_cell(&self) -> Cell<'_> {
        Cell::Int(*self)
    }
}

impl ToCell for Option<bool> {
    fn to_cell(&self) -> Cell<'_> {
        self.map_or(Cell::Null, Cell::Bool)
    }
}

impl ToCell for Vec<String> {
    fn to_cell(&self) -> Cell<'_> {
        Cell::List(self)
    }
}

/// `None` is unknown (a null cell); `Some(vec![])` is a known empty list.
impl ToCell for Option<Vec<String>> {
    fn to_cell(&self) -> Cell<'_> {
        self.as_deref().map_or(Cell::Null, Cell::List)
    }
}

impl ToCell for uuid::Uuid {
    fn to_cell(&self) -> Cell<'_> {
        Cell::Uuid(self)
    }
}

impl ToCell for Option<uuid::Uuid> {
    fn to_cell(&self) -> Cell<'_> {
        self.as_ref().map_or(Cell::Null, Cell::Uuid)
    }
}

/// A cell read back from CSV, typed by its column's `Kind`: a `Cell`, owned.
#[derive(Debug, Clone, PartialEq)]
pub enum CellValue {
    /// An empty cell.
    Null,
    Int(i64),
    Bool(bool),
    Str(String),
    List(Vec<String>),
    Uuid(uuid::Uuid),
}

/// `ToCell` in reverse: a field's value from its cell, `None` when the value cannot be the
/// field's (an empty cell for a number or a uuid that is not optional).
pub trait FromCell: Sized {
    fn from_cell(value: CellValue) -> Option<Self>;
}

/// An empty cell is `None`; anything else is the inner type's.
impl<T: FromCell> FromCell for Option<T> {
    fn from_cell(value: CellValue) -> Option<Self> {
        match value {
            CellValue::Null => Some(None),
            v => T::from_cell(v).map(Some),
        }
    }
}

/// A required string: an empty cell is the empty string.
impl FromCell for String {
    fn from_cell(value: CellValue) -> Option<Self> {
        match value {
            CellValue::Null => Some(String::new()),
            CellValue::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// A required list: an empty cell is an empty list (as `Option<Vec<String>>`, it is unknown:
/// `Some(vec![])` does not survive CSV).
impl FromCell for Vec<String> {
    fn from_cell(value: CellValue) -> Option<Self> {
        match value {
            CellValue::Null => Some(Vec::new()),
            CellValue::List(items) => Some(items),
            _ => None,
        }
    }
}

impl FromCell for i64 {
    fn from_cell(value: CellValue) -> Option<Self> {
        match value {
            CellValue::Int(n) => Some(n),
            _ => None,
        }
    }
}

impl FromCell for bool {
    fn from_cell(value: CellValue) -> Option<Self> {
        match value {
            CellValue::Bool(b) => Some(b),
            _ => None,
        }
    }
}

impl FromCell for uuid::Uuid {
    fn from_cell(value: CellValue) -> Option<Self> {
        match value {
            CellValue::Uuid(u) => Some(u),
            _ => None,
        }
    }
}

/// One field of a row read back: its column's value, as the field's type.
pub(super) fn field<T: FromCell>(
    column: &'static Column,
    value: &mut dyn FnMut(&'static Column) -> Result<CellValue, String>,
) -> Result<T, (&'static Column, String)> {
    let v = value(column).map_err(|e| (column, e))?;
    let empty = v == CellValue::Null;
    T::from_cell(v).ok_or_else(|| {
        let what = if empty {
            "empty"
        } else {
            "the wrong kind of value"
        };
        (
            column,
            format!("{what}, expected {}", column.kind.expected()),
        )
    })
}
