//! chute's conversion core: delimited text -> JSON Lines / Parquet, parsed, checked and encoded
//! on worker threads with the GIL released (see tasks/convert/engine.py, the one caller).

pub mod convert;
pub mod groups;
pub mod json;
pub mod parse;
pub mod split;
pub mod typed;
pub mod types;

#[cfg(feature = "python")]
mod binding;
