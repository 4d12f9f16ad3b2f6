//! Typed mode's record sink: each value read as its column's type (native/src/types.rs) into
//! Arrow arrays and JSON Lines, and what every value fits, to widen a column that a value
//! doesn't fit (the caller then converts again with the wider types).

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, TimestampMicrosecondBuilder,
};
use arrow_array::{new_null_array, ArrayRef, LargeStringArray};
use arrow_buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::json;
use crate::parse::{Record, RecordSink};
use crate::types::{self, Kind};

/// The first value of a chunk's column that its type doesn't hold.
pub struct Misfit {
    pub column: usize,
    /// The record's index within the chunk.
    pub index: usize,
    pub value: String,
}

/// The Arrow type a column of this kind is written as.
pub fn data_type(kind: Kind) -> DataType {
    match kind {
        Kind::Unknown | Kind::String => DataType::LargeUtf8,
        Kind::Int => DataType::Int64,
        Kind::Float => DataType::Float64,
        Kind::Bool => DataType::Boolean,
        Kind::Date => DataType::Date32,
        Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
    }
}

pub fn schema(header: &[String], kinds: &[Kind]) -> SchemaRef {
    Arc::new(Schema::new(
        header
            .iter()
            .zip(kinds)
            .map(|(name, kind)| Field::new(name, data_type(*kind), true))
            .collect::<Vec<_>>(),
    ))
}

/// An Arrow array being built for one column of a chunk.
pub(crate) enum Builder {
    Text {
        offsets: Vec<i64>,
        values: Vec<u8>,
    },
    Int(Int64Builder),
    Float(Float64Builder),
    Bool(BooleanBuilder),
    Date(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder),
    /// A column absent from the file: this many nulls of this type.
    Nulls(DataType, usize),
}

impl Builder {
    pub(crate) fn new(kind: Kind, rows: usize, bytes: usize) -> Builder {
        match kind {
            Kind::Unknown | Kind::String => Builder::Text {
                offsets: {
                    let mut offsets = Vec::with_capacity(rows + 1);
                    offsets.push(0);
                    offsets
                },
                values: Vec::with_capacity(bytes),
            },
            Kind::Int => Builder::Int(Int64Builder::with_capacity(rows)),
            Kind::Float => Builder::Float(Float64Builder::with_capacity(rows)),
            Kind::Bool => Builder::Bool(BooleanBuilder::with_capacity(rows)),
            Kind::Date => Builder::Date(Date32Builder::with_capacity(rows)),
            Kind::Timestamp => Builder::Timestamp(TimestampMicrosecondBuilder::with_capacity(rows)),
        }
    }

    /// A null (text: an empty string; text columns are never null).
    pub(crate) fn append_null(&mut self) {
        match self {
            Builder::Text { offsets, values } => offsets.push(values.len() as i64),
            Builder::Int(b) => b.append_null(),
            Builder::Float(b) => b.append_null(),
            Builder::Bool(b) => b.append_null(),
            Builder::Date(b) => b.append_null(),
            Builder::Timestamp(b) => b.append_null(),
            Builder::Nulls(_, rows) => *rows += 1,
        }
    }

    pub(crate) fn finish(self) -> ArrayRef {
        match self {
            // Safety: offsets are monotonic from 0 to values.len(), and the parser checked that
            // the values are valid UTF-8 field by field.
            Builder::Text { offsets, values } => Arc::new(unsafe {
                LargeStringArray::new_unchecked(
                    OffsetBuffer::new_unchecked(ScalarBuffer::from(offsets)),
                    Buffer::from_vec(values),
                    None,
                )
            }),
            Builder::Int(mut b) => Arc::new(b.finish()),
            Builder::Float(mut b) => Arc::new(b.finish()),
            Builder::Bool(mut b) => Arc::new(b.finish()),
            Builder::Date(mut b) => Arc::new(b.finish()),
            Builder::Timestamp(mut b) => Arc::new(b.finish().with_timezone("UTC")),
            Builder::Nulls(data_type, rows) => new_null_array(&data_type, rows),
        }
    }
}

/// Reads a chunk's records as the column types say.
pub struct TypedSink<'a> {
    kinds: &'a [Kind],
    prefixes: &'a [Vec<u8>],
    /// Whether outputs are built (false: only what the values fit is collected).
    build: bool,
    jsonl: Option<Vec<u8>>,
    builders: Option<Vec<Builder>>,
    /// Per column, the types that every value read fits.
    pub masks: Vec<u8>,
    pub misfits: Vec<Misfit>,
    rows: usize,
}

impl<'a> TypedSink<'a> {
    pub fn new(
        kinds: &'a [Kind],
        prefixes: &'a [Vec<u8>],
        jsonl: bool,
        arrays: bool,
        build: bool,
        bytes: usize,
    ) -> Self {
        let rows = 1024;
        let share = bytes / kinds.len().max(1);
        TypedSink {
            kinds,
            prefixes,
            build,
            jsonl: (build && jsonl).then(|| Vec::with_capacity(bytes + bytes / 2)),
            builders: (build && arrays).then(|| {
                kinds
                    .iter()
                    .map(|kind| Builder::new(*kind, rows, share))
                    .collect()
            }),
            masks: kinds.iter().map(|kind| kind.mask()).collect(),
            misfits: Vec::new(),
            rows: 0,
        }
    }

    /// Whether the outputs hold every record (no value was a misfit of a typed column).
    pub fn built(&self) -> bool {
        self.build
    }

    /// The JSON Lines and the Arrow arrays built, if asked for and built.
    pub fn finish(self) -> (Option<Vec<u8>>, Option<Vec<ArrayRef>>) {
        if !self.build {
            return (None, None);
        }
        let arrays = self
            .builders
            .map(|builders| builders.into_iter().map(Builder::finish).collect());
        (self.jsonl, arrays)
    }

    fn misfit(&mut self, column: usize, value: &[u8]) {
        if self.misfits.iter().all(|m| m.column != column) {
            self.misfits.push(Misfit {
                column,
                index: self.rows,
                value: String::from_utf8_lossy(value).into_owned(),
            });
        }
    }
}

impl RecordSink for TypedSink<'_> {
    fn record(&mut self, record: &Record<'_>) {
        for (i, &kind) in self.kinds.iter().enumerate() {
            let value = record.field(i);
            if kind.is_text() {
                if kind == Kind::Unknown && !types::is_null(value) {
                    let fits = types::classify(value);
                    self.masks[i] &= fits;
                    if fits != 0 {
                        self.misfit(i, value); // typed values after null markers: widen
                    }
                }
                if self.build {
                    if let Some(out) = &mut self.jsonl {
                        out.extend_from_slice(&self.prefixes[i]);
                        json::write_str(out, value);
                    }
                    if let Some(Builder::Text { offsets, values }) =
                        self.builders.as_mut().map(|b| &mut b[i])
                    {
                        values.extend_from_slice(value);
                        offsets.push(values.len() as i64);
                    }
                }
                continue;
            }
            if types::is_null(value) {
                if self.build {
                    if let Some(out) = &mut self.jsonl {
                        out.extend_from_slice(&self.prefixes[i]);
                        out.extend_from_slice(b"null");
                    }
                    if let Some(builders) = &mut self.builders {
                        match &mut builders[i] {
                            Builder::Int(b) => b.append_null(),
                            Builder::Float(b) => b.append_null(),
                            Builder::Bool(b) => b.append_null(),
                            Builder::Date(b) => b.append_null(),
                            Builder::Timestamp(b) => b.append_null(),
                            Builder::Text { .. } | Builder::Nulls(..) => {
                                unreachable!("a typed column")
                            }
                        }
                    }
                }
                continue;
            }
            let builder = match (self.build, &mut self.builders) {
                (true, Some(builders)) => Some(&mut builders[i]),
                _ => None,
            };
            let fits = match (kind, builder) {
                (Kind::Int, builder) => match types::parse_int(value) {
                    Some(n) => {
                        if !types::int_is_exact_float(n) {
                            self.masks[i] &= !types::FLOAT;
                        }
                        if let Some(Builder::Int(b)) = builder {
                            b.append_value(n);
                        }
                        true
                    }
                    None => false,
                },
                (Kind::Float, builder) => match types::parse_float(value) {
                    Some(x) => {
                        if let Some(Builder::Float(b)) = builder {
                            b.append_value(x);
                        }
                        true
                    }
                    None => false,
                },
                (Kind::Bool, builder) => match types::parse_bool(value) {
                    Some(v) => {
                        if let Some(Builder::Bool(b)) = builder {
                            b.append_value(v);
                        }
                        true
                    }
                    None => false,
                },
                (Kind::Date, builder) => match types::parse_date(value) {
                    Some(days) => {
                        if let Some(Builder::Date(b)) = builder {
                            b.append_value(days);
                        }
                        true
                    }
                    None => false,
                },
                (Kind::Timestamp, builder) => match types::parse_timestamp(value) {
                    Some(micros) => {
                        if let Some(Builder::Timestamp(b)) = builder {
                            b.append_value(micros);
                        }
                        true
                    }
                    None => false,
                },
                (Kind::Unknown | Kind::String, _) => unreachable!("text columns above"),
            };
            if !fits {
                self.masks[i] &= types::classify(value);
                self.misfit(i, value);
                // This chunk's output is of no use: the column must be converted again wider.
                self.build = false;
                self.jsonl = None;
                self.builders = None;
                continue;
            }
            if self.build {
                if let Some(out) = &mut self.jsonl {
                    out.extend_from_slice(&self.prefixes[i]);
                    match kind {
                        // the number as written: a JSON number, and exactly the value
                        Kind::Int | Kind::Float => out.extend_from_slice(value),
                        Kind::Bool => {
                            out.extend_from_slice(if value[0] == b't' || value[0] == b'T' {
                                b"true"
                            } else {
                                b"false"
                            })
                        }
                        _ => json::write_str(out, value),
                    }
                }
            }
        }
        if let Some(out) = &mut self.jsonl {
            out.extend_from_slice(b"}\n");
        }
        self.rows += 1;
    }
}

/// Collects only what the values of each column fit (inference from a first chunk).
pub struct Classify {
    pub masks: Vec<u8>,
}

impl RecordSink for Classify {
    fn record(&mut self, record: &Record<'_>) {
        for (i, mask) in self.masks.iter_mut().enumerate() {
            if *mask == 0 {
                continue; // already text
            }
            let value = record.field(i);
            if !types::is_null(value) {
                *mask &= types::classify(value);
            }
        }
    }
}
