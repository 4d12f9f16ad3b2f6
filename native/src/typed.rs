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
        jsonl: Option<Vec<u8>>,
        arrays: bool,
        build: bool,
        (bytes, rows): (usize, usize),
    ) -> Self {
        let share = bytes / kinds.len().max(1);
        TypedSink {
            kinds,
            prefixes,
            build,
            jsonl: jsonl.filter(|_| build),
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

impl TypedSink<'_> {
    /// A text column's value, as written (an Unknown column's typed value widens it).
    fn text(&mut self, i: usize, kind: Kind, value: &[u8]) {
        if kind == Kind::Unknown && !types::is_null(value) {
            let fits = types::classify(value);
            self.masks[i] &= fits;
            if fits != 0 {
                self.misfit(i, value); // typed values after null markers: widen
            }
        }
        if !self.build {
            return;
        }
        if let Some(out) = &mut self.jsonl {
            out.extend_from_slice(&self.prefixes[i]);
            json::write_str(out, value);
        }
        if let Some(Builder::Text { offsets, values }) = self.builders.as_mut().map(|b| &mut b[i]) {
            values.extend_from_slice(value);
            offsets.push(values.len() as i64);
        }
    }

    /// A null marker in a typed column.
    fn null(&mut self, i: usize) {
        if !self.build {
            return;
        }
        if let Some(out) = &mut self.jsonl {
            out.extend_from_slice(&self.prefixes[i]);
            out.extend_from_slice(b"null");
        }
        if let Some(builders) = &mut self.builders {
            builders[i].append_null();
        }
    }

    /// A typed column's value read as its type into the array being built; false if it
    /// doesn't fit.
    fn typed(&mut self, i: usize, kind: Kind, value: &[u8]) -> bool {
        let builder = match (self.build, &mut self.builders) {
            (true, Some(builders)) => Some(&mut builders[i]),
            _ => None,
        };
        match kind {
            Kind::Int => types::parse_int(value).map(|n| {
                if !types::int_is_exact_float(n) {
                    self.masks[i] &= !types::FLOAT;
                }
                if let Some(Builder::Int(b)) = builder {
                    b.append_value(n);
                }
            }),
            Kind::Float => types::parse_float(value).map(|x| {
                if let Some(Builder::Float(b)) = builder {
                    b.append_value(x);
                }
            }),
            Kind::Bool => types::parse_bool(value).map(|v| {
                if let Some(Builder::Bool(b)) = builder {
                    b.append_value(v);
                }
            }),
            Kind::Date => types::parse_date(value).map(|days| {
                if let Some(Builder::Date(b)) = builder {
                    b.append_value(days);
                }
            }),
            Kind::Timestamp => types::parse_timestamp(value).map(|micros| {
                if let Some(Builder::Timestamp(b)) = builder {
                    b.append_value(micros);
                }
            }),
            Kind::Unknown | Kind::String => unreachable!("text columns are written as text"),
        }
        .is_some()
    }

    /// A value its column's type doesn't hold: the column widens, this chunk's output is of
    /// no use (the file must be converted again, wider).
    fn widen(&mut self, i: usize, value: &[u8]) {
        self.masks[i] &= types::classify(value);
        self.misfit(i, value);
        self.build = false;
        self.jsonl = None;
        self.builders = None;
    }

    /// A typed value in JSON Lines: numbers as written (a JSON number, exactly the value).
    fn json(&mut self, i: usize, kind: Kind, value: &[u8]) {
        let Some(out) = self.jsonl.as_mut().filter(|_| self.build) else {
            return;
        };
        out.extend_from_slice(&self.prefixes[i]);
        match kind {
            Kind::Int | Kind::Float => out.extend_from_slice(value),
            Kind::Bool if value[0] == b't' || value[0] == b'T' => out.extend_from_slice(b"true"),
            Kind::Bool => out.extend_from_slice(b"false"),
            _ => json::write_str(out, value),
        }
    }
}

impl RecordSink for TypedSink<'_> {
    fn record(&mut self, record: &Record<'_>) {
        for (i, &kind) in self.kinds.iter().enumerate() {
            let value = record.field(i);
            if kind.is_text() {
                self.text(i, kind, value);
            } else if types::is_null(value) {
                self.null(i);
            } else if self.typed(i, kind, value) {
                self.json(i, kind, value);
            } else {
                self.widen(i, value);
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
