//! What can go wrong in a conversion, as types (the binding maps each to a Python exception).

use std::fmt;

use crate::parse::RowProblem;
use crate::split::SplitError;

/// Why a cell breaks its data contract (the first failed check, in this order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// An empty field (or one of the contract's nulls) in a column that is not nullable.
    Empty,
    /// A value its column's type doesn't read (the type's name).
    NotValid(&'static str),
    /// A string that the column's pattern doesn't match as a whole.
    Pattern,
    /// A value not among the column's allowed ones.
    NotAllowed,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Empty => f.write_str("empty value"),
            Reason::NotValid(kind) => write!(f, "not a valid {kind}"),
            Reason::Pattern => f.write_str("does not match the pattern"),
            Reason::NotAllowed => f.write_str("not an allowed value"),
        }
    }
}

/// One bad cell, at a file row (the header is row 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub row: usize,
    pub column: String,
    pub value: String,
    pub reason: Reason,
}

/// A file its data contract rejects: exact counts, the first problems (the report limit).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Violation {
    pub problem_count: usize,
    pub bad_rows: usize,
    pub problems: Vec<Problem>,
    /// Why the file as a whole failed, when not a single problem (a budget exceeded).
    pub detail: Option<String>,
}

/// What is wrong at a row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RowFault {
    /// The record can't be read (width, quoting, UTF-8).
    Record(RowProblem),
    /// The stream can't be cut into records from there on.
    Cut(SplitError),
    /// A value the type given for its column doesn't hold: a conversion started again with the
    /// types a first read found, so the file changed between the two reads.
    Changed {
        column: String,
        value: String,
        kind: &'static str,
    },
}

impl fmt::Display for RowFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RowFault::Record(problem) => problem.fmt(f),
            RowFault::Cut(error) => write!(f, "cannot parse: {error}"),
            RowFault::Changed {
                column,
                value,
                kind,
            } => write!(
                f,
                "column {column:?}: {value:?} is not a valid {kind} (did the file change while it \
                 was read again?)"
            ),
        }
    }
}

/// Why a conversion stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// A record that can't be read (`row 7: expected 3 fields as in the header, found 2`).
    Row { row: usize, fault: RowFault },
    /// The content as a whole (a panic, an encoder's error): the first line of what was said.
    Content(String),
    /// The data contract's error policy rejects the file.
    Contract(Violation),
    /// The converter was used after it had failed.
    AlreadyFailed,
    /// Options that can't work (a type name, a regex, a count of types).
    Options(String),
}

impl Error {
    pub fn content(detail: impl fmt::Display) -> Error {
        let detail = detail.to_string();
        let first = detail.lines().next().unwrap_or("").chars().take(200);
        Error::Content(first.collect())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Row { row, fault } => write!(f, "row {row}: {fault}"),
            Error::Content(detail) => write!(
                f,
                "the content can't be converted: the parser failed on it ({detail})"
            ),
            Error::Contract(v) => write!(
                f,
                "the data contract rejects the file: {} problems in {} rows",
                v.problem_count, v.bad_rows
            ),
            Error::AlreadyFailed => f.write_str("the conversion has already failed"),
            Error::Options(detail) => f.write_str(detail),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_as_before() {
        let row = Error::Row {
            row: 7,
            fault: RowFault::Record(RowProblem::Width {
                expected: 3,
                found: 2,
            }),
        };
        assert_eq!(
            row.to_string(),
            "row 7: expected 3 fields as in the header, found 2"
        );
        assert_eq!(
            Error::content("boom\nmore").to_string(),
            "the content can't be converted: the parser failed on it (boom)"
        );
        assert_eq!(Reason::NotValid("int").to_string(), "not a valid int");
        let cut = Error::Row {
            row: 2,
            fault: RowFault::Cut(SplitError::UnterminatedQuote),
        };
        assert_eq!(
            cut.to_string(),
            "row 2: cannot parse: the file ends inside a quoted field"
        );
    }
}
