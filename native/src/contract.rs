//! A data contract's checks, chunk by chunk: each record's cells typed and checked by the
//! contract's rules (native/src/values.rs), the valid rows written (JSON Lines, Arrow arrays
//! for the Parquet writer), the bad ones kept as written for the rejected-rows output, with why.
//!
//! Checks per cell, the first that fails names the problem: `nullable` (an empty field, or one
//! of the contract's `nulls` in a typed column), the type, the `pattern` (anchored: the whole
//! value must match), the `allowed` values. Empty cells are only checked for `nullable`.

use std::collections::HashSet;
use std::io::Write;

use arrow_array::ArrayRef;
use regex::Regex;

use crate::error::{Error, Reason};
use crate::json;
use crate::parse::{Record, RecordSink};
use crate::typed::{self, Builder};
use crate::types::Kind;
use crate::values;

/// The values a column allows.
#[derive(Clone, Debug)]
pub enum Allowed {
    Strings(HashSet<Vec<u8>>),
    Ints(HashSet<i64>),
}

/// One output column: a contract column (present in the file or not), or an extra kept as text.
#[derive(Clone, Debug)]
pub struct Column {
    pub name: String,
    pub kind: Kind,
    /// The file column it is read from (None: absent from the file, all null).
    pub source: Option<usize>,
    /// Whether it is the contract's (checked), not an extra column kept as text.
    pub checked: bool,
    pub nullable: bool,
    pub pattern: Option<Regex>,
    pub allowed: Option<Allowed>,
}

/// `pattern` compiled as polars ran it: Rust's regex, anchored to the whole value.
pub fn compile_pattern(pattern: &str) -> Result<Regex, Error> {
    Regex::new(&format!("^(?:{pattern})$")).map_err(|e| Error::Options(e.to_string()))
}

/// What the contract does with bad rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// The file fails on the first problem.
    Reject,
    /// Bad rows are left out (written to the rejected rows); more than this many fail the file.
    DropRows { max_rejected_rows: usize },
}

/// A data contract planned on a file's header.
#[derive(Clone, Debug)]
pub struct Contract {
    /// The output columns, in output order (contract order, then kept extras).
    pub columns: Vec<Column>,
    /// Values null in typed columns (string columns: only the empty field).
    pub nulls: Vec<Vec<u8>>,
    pub policy: Policy,
    /// Problems listed at most (counts are always exact).
    pub report_limit: usize,
}

impl Contract {
    pub fn kinds(&self) -> Vec<Kind> {
        self.columns.iter().map(|c| c.kind).collect()
    }

    pub fn names(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.name.clone()).collect()
    }
}

/// A cell's typed value (text: the file field it is read from, as written).
#[derive(Clone, Copy)]
enum Cell {
    Null,
    Int(i64),
    Float(f64),
    Bool(bool),
    Date(i32),
    Timestamp(i64),
    Text(usize),
}

impl Column {
    fn check(&self, value: &[u8], source: usize, nulls: &[Vec<u8>]) -> Result<Cell, Reason> {
        let text = self.kind.is_text();
        let empty = if text {
            value.is_empty()
        } else {
            nulls.iter().any(|null| null == value)
        };
        if empty {
            return match (self.nullable, text) {
                (false, _) => Err(Reason::Empty),
                (true, true) => Ok(Cell::Text(source)),
                (true, false) => Ok(Cell::Null),
            };
        }
        let cell = match self.kind {
            Kind::Int => values::int(value).map(Cell::Int),
            Kind::Float => values::float(value).map(Cell::Float),
            Kind::Bool => values::bool(value).map(Cell::Bool),
            Kind::Date => values::date(value).map(Cell::Date),
            Kind::Timestamp => values::timestamp(value).map(Cell::Timestamp),
            Kind::String | Kind::Unknown => Some(Cell::Text(source)),
        }
        .ok_or(Reason::NotValid(self.kind.name()))?;
        if let Some(pattern) = &self.pattern {
            // Safety: the parser checked that every field is valid UTF-8.
            if !pattern.is_match(unsafe { std::str::from_utf8_unchecked(value) }) {
                return Err(Reason::Pattern);
            }
        }
        let allowed = match (&self.allowed, cell) {
            (Some(Allowed::Strings(set)), Cell::Text(_)) => set.contains(value),
            (Some(Allowed::Ints(set)), Cell::Int(n)) => set.contains(&n),
            _ => true,
        };
        if allowed {
            Ok(cell)
        } else {
            Err(Reason::NotAllowed)
        }
    }
}

/// A bad cell of a chunk: the record's index within it, the output column, the value.
pub struct ChunkProblem {
    pub index: usize,
    pub column: usize,
    pub value: String,
    pub reason: Reason,
}

/// A rejected row's JSON object around its row number (known once the chunk is in order).
pub struct Rejected {
    pub index: usize,
    /// `{"id":"x",...,"_row":` and `,"_errors":"..."}` + newline.
    pub head: Vec<u8>,
    pub tail: Vec<u8>,
}

/// What a chunk gave under a contract.
pub struct Checked {
    pub rows: usize,
    pub jsonl: Option<Vec<u8>>,
    pub arrays: Option<Vec<ArrayRef>>,
    pub bad_rows: usize,
    pub problem_count: usize,
    pub problems: Vec<ChunkProblem>,
    pub rejected: Vec<Rejected>,
}

/// Checks a chunk's records against a contract and builds the outputs of the valid ones.
pub struct ContractSink<'a> {
    contract: &'a Contract,
    prefixes: &'a [Vec<u8>],
    header_prefixes: &'a [Vec<u8>],
    jsonl: Option<Vec<u8>>,
    builders: Option<Vec<Builder>>,
    cells: Vec<Cell>,
    reasons: Vec<(usize, Reason)>,
    index: usize,
    checked: Checked,
}

impl<'a> ContractSink<'a> {
    /// `prefixes`: the output columns' JSON keys; `header_prefixes`: the file columns'.
    pub fn new(
        contract: &'a Contract,
        prefixes: &'a [Vec<u8>],
        header_prefixes: &'a [Vec<u8>],
        jsonl: Option<Vec<u8>>,
        arrays: bool,
        (bytes, rows): (usize, usize),
    ) -> Self {
        let share = bytes / contract.columns.len().max(1);
        ContractSink {
            contract,
            prefixes,
            header_prefixes,
            jsonl,
            builders: arrays.then(|| {
                let builder = |c: &Column| match c.source {
                    Some(_) => Builder::new(c.kind, rows, share),
                    None => Builder::Nulls(typed::data_type(c.kind), 0),
                };
                contract.columns.iter().map(builder).collect()
            }),
            cells: Vec::with_capacity(contract.columns.len()),
            reasons: Vec::new(),
            index: 0,
            checked: Checked {
                rows: 0,
                jsonl: None,
                arrays: None,
                bad_rows: 0,
                problem_count: 0,
                problems: Vec::new(),
                rejected: Vec::new(),
            },
        }
    }

    pub fn finish(mut self) -> Checked {
        self.checked.jsonl = self.jsonl;
        self.checked.arrays = self
            .builders
            .map(|builders| builders.into_iter().map(Builder::finish).collect());
        self.checked
    }

    fn reject(&mut self, record: &Record<'_>) {
        let checked = &mut self.checked;
        checked.bad_rows += 1;
        checked.problem_count += self.reasons.len();
        let room = self
            .contract
            .report_limit
            .saturating_sub(checked.problems.len());
        for &(column, reason) in self.reasons.iter().take(room) {
            let source = self.contract.columns[column]
                .source
                .expect("a checked column");
            let value = String::from_utf8_lossy(record.field(source)).into_owned();
            checked.problems.push(ChunkProblem {
                index: self.index,
                column,
                value,
                reason,
            });
        }
        let mut head = Vec::new();
        for (i, prefix) in self.header_prefixes.iter().enumerate() {
            head.extend_from_slice(prefix);
            json::write_str(&mut head, record.field(i));
        }
        head.extend_from_slice(b",\"_row\":");
        let mut errors = Vec::new();
        for (k, (column, reason)) in self.reasons.iter().enumerate() {
            let separator = if k == 0 { "" } else { "; " };
            let name = &self.contract.columns[*column].name;
            let _ = write!(errors, "{separator}{name}: {reason}");
        }
        let mut tail = b",\"_errors\":".to_vec();
        json::write_str(&mut tail, &errors);
        tail.extend_from_slice(b"}\n");
        checked.rejected.push(Rejected {
            index: self.index,
            head,
            tail,
        });
    }

    fn write(&mut self, record: &Record<'_>) {
        if let Some(out) = &mut self.jsonl {
            for (prefix, cell) in self.prefixes.iter().zip(&self.cells) {
                out.extend_from_slice(prefix);
                write_json(out, *cell, record);
            }
            out.extend_from_slice(b"}\n");
        }
        if let Some(builders) = &mut self.builders {
            for (builder, cell) in builders.iter_mut().zip(&self.cells) {
                append(builder, *cell, record);
            }
        }
        self.checked.rows += 1;
    }
}

impl RecordSink for ContractSink<'_> {
    fn record(&mut self, record: &Record<'_>) {
        self.cells.clear();
        self.reasons.clear();
        for (i, column) in self.contract.columns.iter().enumerate() {
            let cell = match column.source {
                None => Cell::Null,
                Some(source) if !column.checked => Cell::Text(source),
                Some(source) => {
                    let value = record.field(source);
                    match column.check(value, source, &self.contract.nulls) {
                        Ok(cell) => cell,
                        Err(reason) => {
                            self.reasons.push((i, reason));
                            Cell::Null
                        }
                    }
                }
            };
            self.cells.push(cell);
        }
        if self.reasons.is_empty() {
            self.write(record);
        } else {
            self.reject(record);
        }
        self.index += 1;
    }
}

fn write_json(out: &mut Vec<u8>, cell: Cell, record: &Record<'_>) {
    match cell {
        Cell::Null => out.extend_from_slice(b"null"),
        Cell::Int(n) => {
            let _ = write!(out, "{n}");
        }
        Cell::Float(x) => values::write_float(out, x),
        Cell::Bool(v) => out.extend_from_slice(if v { b"true" } else { b"false" }),
        Cell::Date(days) => values::write_date(out, days),
        Cell::Timestamp(micros) => values::write_timestamp(out, micros),
        Cell::Text(source) => json::write_str(out, record.field(source)),
    }
}

fn append(builder: &mut Builder, cell: Cell, record: &Record<'_>) {
    match (builder, cell) {
        (Builder::Text { offsets, values }, Cell::Text(source)) => {
            values.extend_from_slice(record.field(source));
            offsets.push(values.len() as i64);
        }
        (Builder::Text { offsets, values }, _) => offsets.push(values.len() as i64),
        (Builder::Int(b), Cell::Int(n)) => b.append_value(n),
        (Builder::Float(b), Cell::Float(x)) => b.append_value(x),
        (Builder::Bool(b), Cell::Bool(v)) => b.append_value(v),
        (Builder::Date(b), Cell::Date(days)) => b.append_value(days),
        (Builder::Timestamp(b), Cell::Timestamp(micros)) => b.append_value(micros),
        (builder, _) => builder.append_null(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;

    fn column(name: &str, kind: Kind, source: usize) -> Column {
        Column {
            name: name.into(),
            kind,
            source: Some(source),
            checked: true,
            nullable: true,
            pattern: None,
            allowed: None,
        }
    }

    fn run(contract: &Contract, data: &[u8], width: usize) -> Checked {
        let names: Vec<String> = (0..width).map(|i| format!("c{i}")).collect();
        let header = json::key_prefixes(&names);
        let prefixes = json::key_prefixes(&contract.names());
        let mut sink = ContractSink::new(
            contract,
            &prefixes,
            &header,
            Some(Vec::new()),
            true,
            (data.len(), 1024),
        );
        parse(data, b',', b'"', width, &mut sink).unwrap();
        sink.finish()
    }

    #[test]
    fn the_first_failed_check_names_the_problem() {
        let mut code = column("code", Kind::String, 1);
        code.pattern = Some(compile_pattern("[A-Z]+|x").unwrap());
        code.allowed = Some(Allowed::Strings(HashSet::from([b"AB".to_vec()])));
        let mut id = column("id", Kind::Int, 0);
        id.nullable = false;
        let contract = Contract {
            columns: vec![id, code],
            nulls: vec![b"".to_vec(), b"NA".to_vec()],
            policy: Policy::Reject,
            report_limit: 3,
        };
        let checked = run(&contract, b"1,AB\n,ab\nNA,CD\n2,\n", 2);
        assert_eq!(
            (checked.rows, checked.bad_rows, checked.problem_count),
            (2, 2, 4)
        );
        let reasons: Vec<(usize, usize, Reason)> = checked
            .problems
            .iter()
            .map(|p| (p.index, p.column, p.reason))
            .collect();
        assert_eq!(
            reasons,
            vec![
                (1, 0, Reason::Empty),
                (1, 1, Reason::Pattern),
                (2, 0, Reason::Empty)
            ]
        );
        let rejected = &checked.rejected[0];
        let text = [&rejected.head[..], b"3", &rejected.tail[..]].concat();
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "{\"c0\":\"\",\"c1\":\"ab\",\"_row\":3,\"_errors\":\"id: empty value; code: does not \
             match the pattern\"}\n"
        );
        assert_eq!(
            String::from_utf8(checked.jsonl.unwrap()).unwrap(),
            "{\"id\":1,\"code\":\"AB\"}\n{\"id\":2,\"code\":\"\"}\n"
        );
    }

    #[test]
    fn missing_columns_are_null_and_extras_kept_as_written() {
        let mut extra = column("extra", Kind::String, 1);
        extra.checked = false;
        let mut missing = column("gone", Kind::Float, 0);
        missing.source = None;
        let contract = Contract {
            columns: vec![column("at", Kind::Timestamp, 0), missing, extra],
            nulls: vec![b"".to_vec()],
            policy: Policy::DropRows {
                max_rejected_rows: 0,
            },
            report_limit: 20,
        };
        let checked = run(&contract, b"2024-01-05T10:20:30.5+01:00,\"x,y\"\n", 2);
        assert_eq!(
            String::from_utf8(checked.jsonl.unwrap()).unwrap(),
            "{\"at\":\"2024-01-05T09:20:30.500+00:00\",\"gone\":null,\"extra\":\"x,y\"}\n"
        );
        let arrays = checked.arrays.unwrap();
        assert_eq!(arrays[1].null_count(), 1);
    }
}
