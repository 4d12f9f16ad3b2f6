//! What a conversion is asked for: the dialect, the outputs, how values are typed.

use std::sync::Arc;

use crate::contract::Contract;
use crate::error::{Error, Result};
use crate::parquet_file::Layout;
use crate::types::Kind;

/// How the records are written: delimiter and quote (one ASCII byte each, not CR or LF, not
/// the same), and the longest record (a quote never closed otherwise reads the whole file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dialect {
    pub delimiter: u8,
    pub quote: u8,
    pub max_record: usize,
}

impl Dialect {
    pub fn new(delimiter: u8, quote: u8, max_record: usize) -> Result<Dialect> {
        for (name, byte) in [("delimiter", delimiter), ("quote", quote)] {
            if !byte.is_ascii() || byte == b'\n' || byte == b'\r' {
                return Err(Error::Options(format!(
                    "the {name} must be one ASCII character other than CR and LF"
                )));
            }
        }
        if delimiter == quote {
            return Err(Error::Options(
                "the delimiter and the quote must differ".into(),
            ));
        }
        Ok(Dialect {
            delimiter,
            quote,
            max_record: max_record.max(1),
        })
    }
}

/// The formats written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outputs {
    /// Nothing: the values are read and typed only (a schema suggested).
    Nothing,
    JsonLines,
    Parquet,
    Both,
}

impl Outputs {
    pub fn new(jsonl: bool, parquet: bool) -> Outputs {
        match (jsonl, parquet) {
            (false, false) => Outputs::Nothing,
            (true, false) => Outputs::JsonLines,
            (false, true) => Outputs::Parquet,
            (true, true) => Outputs::Both,
        }
    }

    pub fn jsonl(self) -> bool {
        matches!(self, Outputs::JsonLines | Outputs::Both)
    }

    pub fn parquet(self) -> bool {
        matches!(self, Outputs::Parquet | Outputs::Both)
    }
}

/// How values are typed.
#[derive(Clone, Debug)]
pub enum Typing {
    /// Every value a string, exactly as written.
    Text,
    /// Types inferred from the first chunk, widened by the values that follow: a column that a
    /// later value doesn't fit ends the output (the conversion must start again, `restart`).
    Infer,
    /// These types, which every value must fit (a conversion started again with the types the
    /// whole file fits: a value that doesn't is the source changing between the two reads).
    Fixed(Vec<Kind>),
    /// A data contract's types and checks.
    Contract(Arc<Contract>),
}

/// What the conversion is asked to produce.
#[derive(Clone, Debug)]
pub struct Config {
    pub header: Vec<String>,
    pub dialect: Dialect,
    pub outputs: Outputs,
    pub typing: Typing,
    pub workers: usize,
    pub layout: Layout,
}
