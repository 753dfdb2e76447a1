//! What is wrong with a catalog document: one problem per asset, or the whole document.

use std::fmt;

/// One thing wrong with one asset. `list` is `assets` or `models`, after the format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub list: &'static str,
    pub index: usize,
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]", self.list, self.index)?;
        if let Some(field) = &self.field {
            write!(f, ".{field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Maps every item of a document's list with `convert` (`None`: the item is left out), and
/// reports every item's problem by its index rather than stopping at the first.
pub(super) fn map_items<T, F>(
    items: Vec<serde_json::Value>,
    list: &'static str,
    mut convert: F,
) -> Result<Vec<T>, CatalogError>
where
    F: FnMut(serde_json::Value) -> Result<Option<T>, (Option<String>, String)>,
{
    let mut out = Vec::with_capacity(items.len());
    let mut problems = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        match convert(item) {
            Ok(Some(value)) => out.push(value),
            Ok(None) => {}
            Err((field, message)) => problems.push(Problem {
                list,
                index,
                field,
                message,
            }),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(CatalogError::Invalid(problems))
    }
}

/// Why a document was refused. A refused document is refused whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("document is {size} bytes, over the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("document is not valid UTF-8 (line {line})")]
    NotUtf8 { line: usize },
    #[error("{}", syntax_message(.format, *.line, *.column, .message))]
    Syntax {
        format: &'static str,
        line: Option<u64>,
        column: Option<u64>,
        message: String,
    },
    #[error("{0}")]
    Shape(String),
    #[error("document has {count} assets, over the limit of {limit}")]
    TooManyAssets { count: usize, limit: usize },
    #[error("{}", problems_message(.0))]
    Invalid(Vec<Problem>),
}

fn syntax_message(format: &str, line: Option<u64>, column: Option<u64>, message: &str) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("{format} syntax error at line {l}, column {c}: {message}"),
        (Some(l), None) => format!("{format} syntax error at line {l}: {message}"),
        _ => format!("{format} syntax error: {message}"),
    }
}

/// How many problems a message lists before it says "and N more".
const SHOWN_PROBLEMS: usize = 10;

fn problems_message(problems: &[Problem]) -> String {
    let mut out = format!(
        "{} invalid asset{}: ",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    let shown: Vec<String> = problems
        .iter()
        .take(SHOWN_PROBLEMS)
        .map(Problem::to_string)
        .collect();
    out.push_str(&shown.join("; "));
    if problems.len() > SHOWN_PROBLEMS {
        out.push_str(&format!("; and {} more", problems.len() - SHOWN_PROBLEMS));
    }
    out
}
