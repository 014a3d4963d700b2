//! Problems found in configuration files, each with file, line and column.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeValue, ValueDeserializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    /// 1-based; 0 when the problem is about the file as a whole.
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if self.line == 0 {
            write!(f, "{}: {level}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {level}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.message
            )
        }
    }
}

/// A position in a configuration file, kept for checks that span files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loc {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

/// Everything found wrong, in file order.
#[derive(Debug, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.severity == Severity::Error)
    }

    pub fn sort(&mut self) {
        self.0.sort_by(|a, b| {
            (&a.file, a.line, a.column, &a.message).cmp(&(&b.file, b.line, b.column, &b.message))
        });
        self.0.dedup();
    }

    pub fn at(&mut self, loc: &Loc, severity: Severity, message: impl Into<String>) {
        self.0.push(Diagnostic {
            severity,
            file: loc.file.clone(),
            line: loc.line,
            column: loc.column,
            message: message.into(),
        });
    }

    pub fn file_error(&mut self, file: &Path, message: impl Into<String>) {
        self.0.push(Diagnostic {
            severity: Severity::Error,
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            message: message.into(),
        });
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// One configuration file being read: its text, for positions, and where problems go.
pub struct Doc<'a> {
    pub file: PathBuf,
    text: &'a str,
    pub diags: &'a mut Diagnostics,
}

impl<'a> Doc<'a> {
    pub fn new(file: &Path, text: &'a str, diags: &'a mut Diagnostics) -> Self {
        Doc {
            file: file.to_path_buf(),
            text,
            diags,
        }
    }

    pub fn text(&self) -> &'a str {
        self.text
    }

    fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..self.text.floor_char_boundary(offset)];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, column)
    }

    pub fn loc(&self, span: Range<usize>) -> Loc {
        let (line, column) = self.position(span.start);
        Loc {
            file: self.file.clone(),
            line,
            column,
        }
    }

    pub fn push(&mut self, severity: Severity, span: Range<usize>, message: impl Into<String>) {
        let (line, column) = self.position(span.start);
        self.diags.0.push(Diagnostic {
            severity,
            file: self.file.clone(),
            line,
            column,
            message: message.into(),
        });
    }

    pub fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.push(Severity::Error, span, message);
    }

    pub fn warning(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.push(Severity::Warning, span, message);
    }

    /// Parses the whole file, reporting every syntax error the parser can recover from.
    pub fn parse(&mut self) -> Option<Spanned<toml::de::DeTable<'a>>> {
        let (root, errors) = toml::de::DeTable::parse_recoverable(self.text);
        let failed = !errors.is_empty();
        for e in errors {
            let span = e.span().unwrap_or(0..0);
            self.error(span, format!("invalid TOML: {}", e.message().trim()));
        }
        (!failed).then_some(root)
    }

    /// Decodes one table into `T`, reporting a type or value error at its position and every
    /// key that `T` does not know.
    pub fn decode<T: DeserializeOwned>(
        &mut self,
        value: &Spanned<DeValue<'_>>,
        what: &str,
    ) -> Option<T> {
        let mut unknown: Vec<Vec<String>> = Vec::new();
        let de = ValueDeserializer::from(value.clone());
        let result: Result<T, _> =
            serde_ignored::deserialize(de, |path| unknown.push(segments(&path)));
        for path in unknown {
            let span = key_span(value, &path).unwrap_or_else(|| value.span());
            let key = path.join(".");
            self.error(span, format!("unknown key `{key}` in {what}"));
        }
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                let span = e.span().unwrap_or_else(|| value.span());
                self.error(span, format!("{what}: {}", e.message().trim()));
                None
            }
        }
    }
}

fn segments(path: &serde_ignored::Path<'_>) -> Vec<String> {
    use serde_ignored::Path;
    let mut out = Vec::new();
    let mut cur = path;
    loop {
        match cur {
            Path::Root => break,
            Path::Seq { parent, index } => {
                out.push(index.to_string());
                cur = parent;
            }
            Path::Map { parent, key } => {
                out.push(key.clone());
                cur = parent;
            }
            Path::Some { parent }
            | Path::NewtypeStruct { parent }
            | Path::NewtypeVariant { parent } => cur = parent,
        }
    }
    out.reverse();
    out
}

/// The span of the key at `path` (map keys and array indices) inside `value`.
fn key_span(value: &Spanned<DeValue<'_>>, path: &[String]) -> Option<Range<usize>> {
    let (first, rest) = path.split_first()?;
    match value.get_ref() {
        DeValue::Table(table) => {
            let (k, v) = table.get_key_value(first.as_str())?;
            if rest.is_empty() {
                Some(k.span())
            } else {
                key_span(v, rest)
            }
        }
        DeValue::Array(array) => {
            let index: usize = first.parse().ok()?;
            let v = array.get(index)?;
            if rest.is_empty() {
                Some(v.span())
            } else {
                key_span(v, rest)
            }
        }
        _ => None,
    }
}
