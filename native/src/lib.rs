//! chute's conversion core: delimited text -> JSON Lines / Parquet, parsed, checked and encoded
//! on worker threads with the GIL released (see tasks/convert/engine.py, the one caller).

pub mod buffers;
pub mod contract;
pub mod convert;
pub mod encode;
pub mod error;
pub mod groups;
pub mod json;
pub mod options;
pub mod parquet_file;
pub mod parse;
pub mod split;
pub mod typed;
pub mod types;
pub mod values;

#[cfg(feature = "python")]
mod binding;
