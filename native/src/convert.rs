//! The chunk loop: cut -> [workers] parse, check, encode -> [in order] outputs.
//!
//! The caller feeds decompressed blocks; each block that completes records becomes a chunk,
//! parsed and encoded by a worker thread (JSON Lines bytes, a Parquet row group's column chunks,
//! or the text columns for typed mode). Results are taken in file order; at most `workers`
//! chunks are in flight, so memory stays a few chunks whatever the file's size.

use std::collections::VecDeque;
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use arrow_array::{ArrayRef, LargeStringArray};
use arrow_buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use parquet::arrow::arrow_writer::{compute_leaves, ArrowColumnChunk, ArrowRowGroupWriterFactory};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;

use crate::json;
use crate::parse::{parse, Record, RecordSink, RowError};
use crate::split::Splitter;

/// What the conversion is asked to produce.
#[derive(Clone)]
pub struct Config {
    pub header: Vec<String>,
    pub delimiter: u8,
    pub quote: u8,
    pub jsonl: bool,
    pub parquet: bool,
    /// Typed mode: hand back each chunk's text columns (typed by the caller).
    pub columns: bool,
    pub workers: usize,
    pub max_record: usize,
    pub zstd_level: i32,
}

/// One chunk's text column: Arrow large-string offsets and values.
pub struct TextColumn {
    pub offsets: Vec<i64>,
    pub values: Vec<u8>,
}

/// What one chunk gave, in file order.
pub struct Chunk {
    pub rows: usize,
    pub jsonl: Option<Vec<u8>>,
    pub parquet: Option<Vec<u8>>,
    pub columns: Option<Vec<TextColumn>>,
}

struct Encoded {
    rows: usize,
    jsonl: Option<Vec<u8>>,
    parquet: Option<Vec<ArrowColumnChunk>>,
    columns: Option<Vec<TextColumn>>,
}

enum Failure {
    /// A record of the chunk (index within it).
    Row(RowError),
    /// The whole content (a panic, an encoder error).
    Content(String),
}

struct Job {
    index: usize,
    data: Vec<u8>,
    reply: Sender<Result<Encoded, Failure>>,
}

/// Bytes written by the Parquet file writer, taken after each row group.
#[derive(Clone, Default)]
struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl SharedBuffer {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct ParquetFile {
    writer: SerializedFileWriter<SharedBuffer>,
    buffer: SharedBuffer,
}

pub struct Converter {
    config: Arc<Config>,
    splitter: Splitter,
    jobs: Option<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
    pending: VecDeque<Receiver<Result<Encoded, Failure>>>,
    submitted: usize,
    data_rows: usize,
    parquet: Option<ParquetFile>,
    failed: bool,
}

/// A full error message for the caller (row numbers as people count lines: header = row 1).
pub type Message = String;

pub fn text_schema(header: &[String]) -> SchemaRef {
    Arc::new(Schema::new(
        header
            .iter()
            .map(|name| Field::new(name, DataType::LargeUtf8, true))
            .collect::<Vec<_>>(),
    ))
}

fn writer_properties(level: i32, dictionary: bool) -> Result<WriterProperties, Message> {
    let level = ZstdLevel::try_new(level).map_err(|e| e.to_string())?;
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_dictionary_enabled(dictionary)
        .set_statistics_enabled(EnabledStatistics::Chunk)
        // pages end at 1 MiB (the default), not at 20,000 rows: short values compress better
        .set_data_page_row_count_limit(usize::MAX)
        .build())
}

/// Column writers with and without dictionary encoding (chosen per column and row group).
struct Factories {
    dictionary: ArrowRowGroupWriterFactory,
    plain: ArrowRowGroupWriterFactory,
}

/// How many leading values of a column chunk decide its encoding.
const DICTIONARY_SAMPLE: usize = 4096;

/// Dictionary encoding pays where values repeat: among the first values of the column chunk,
/// distinct ones must be at most half. Elsewhere (ids, amounts: nearly all distinct) the dictionary's
/// indices compress worse than the plain values under zstd.
fn dictionary_pays(column: &TextColumn) -> bool {
    let rows = column.offsets.len() - 1;
    let sample = rows.min(DICTIONARY_SAMPLE);
    let mut seen = std::collections::HashSet::with_capacity(sample);
    for i in 0..sample {
        let (start, end) = (column.offsets[i] as usize, column.offsets[i + 1] as usize);
        seen.insert(&column.values[start..end]);
        if seen.len() * 2 > sample {
            return false;
        }
    }
    true
}

impl Converter {
    pub fn new(config: Config) -> Result<Self, Message> {
        let config = Arc::new(config);
        let (parquet, factory) = if config.parquet {
            let buffer = SharedBuffer::default();
            let schema = text_schema(&config.header);
            let props = writer_properties(config.zstd_level, true)?;
            let writer = ArrowWriter::try_new(buffer.clone(), Arc::clone(&schema), Some(props))
                .map_err(|e| e.to_string())?;
            let (writer, dictionary) =
                writer.into_serialized_writer().map_err(|e| e.to_string())?;
            // Only its factory is used: column chunks encoded without a dictionary, appended to
            // the real file's row groups like the others.
            let props = writer_properties(config.zstd_level, false)?;
            let unused = ArrowWriter::try_new(std::io::sink(), schema, Some(props))
                .map_err(|e| e.to_string())?;
            let (_, plain) = unused.into_serialized_writer().map_err(|e| e.to_string())?;
            let factories = Factories { dictionary, plain };
            (
                Some(ParquetFile { writer, buffer }),
                Some(Arc::new(factories)),
            )
        } else {
            (None, None)
        };
        let (jobs, queue) = unbounded::<Job>();
        let threads = (0..config.workers.max(1))
            .map(|i| {
                let queue = queue.clone();
                let config = Arc::clone(&config);
                let factory = factory.clone();
                std::thread::Builder::new()
                    .name(format!("chute-parse-{i}"))
                    .spawn(move || {
                        for job in queue {
                            let result = catch_unwind(AssertUnwindSafe(|| {
                                encode(&job.data, job.index, &config, factory.as_deref())
                            }))
                            .unwrap_or_else(|panic| Err(Failure::Content(panic_message(&panic))));
                            let _ = job.reply.send(result);
                        }
                    })
                    .expect("spawn a parse thread")
            })
            .collect();
        Ok(Converter {
            splitter: Splitter::new(config.quote, config.max_record),
            config,
            jobs: Some(jobs),
            threads,
            pending: VecDeque::new(),
            submitted: 0,
            data_rows: 0,
            parquet,
            failed: false,
        })
    }

    /// Takes the next decompressed block; the chunks completed in file order. On an error the
    /// chunks before it are returned with it (the caller writes them, then reports the error).
    pub fn feed(&mut self, block: &[u8]) -> (Vec<Chunk>, Option<Message>) {
        let mut out = Vec::new();
        if self.failed {
            return (out, Some("the conversion has already failed".into()));
        }
        match self.splitter.push(block) {
            Ok(Some(chunk)) => self.submit(chunk),
            Ok(None) => {}
            Err(e) => return self.fail_after_pending(out, e.message()),
        }
        while self.pending.len() > self.config.workers.max(1) {
            if let Err(message) = self.take_oldest(&mut out) {
                self.failed = true;
                return (out, Some(message));
            }
        }
        (out, None)
    }

    /// At the end of the stream: the remaining chunks, then the Parquet footer.
    pub fn finish(&mut self) -> (Vec<Chunk>, Option<Message>, Vec<u8>) {
        let out = Vec::new();
        if self.failed {
            return (
                out,
                Some("the conversion has already failed".into()),
                Vec::new(),
            );
        }
        match self.splitter.finish() {
            Ok(Some(chunk)) => self.submit(chunk),
            Ok(None) => {}
            Err(e) => {
                let (out, error) = self.fail_after_pending(out, e.message());
                return (out, error, Vec::new());
            }
        }
        let mut out = out;
        while !self.pending.is_empty() {
            if let Err(message) = self.take_oldest(&mut out) {
                self.failed = true;
                return (out, Some(message), Vec::new());
            }
        }
        self.stop();
        let tail = match self.parquet.take() {
            Some(file) => match file.writer.close() {
                Ok(_) => file.buffer.take(),
                Err(e) => return (out, Some(content_error(&e.to_string())), Vec::new()),
            },
            None => Vec::new(),
        };
        (out, None, tail)
    }

    fn submit(&mut self, data: Vec<u8>) {
        let (reply, result) = bounded(1);
        let job = Job {
            index: self.submitted,
            data,
            reply,
        };
        self.submitted += 1;
        if let Some(jobs) = &self.jobs {
            jobs.send(job)
                .expect("parse threads run while jobs are sent");
        }
        self.pending.push_back(result);
    }

    /// A cut that failed: the record at fault is the one after every row of the chunks before.
    fn fail_after_pending(
        &mut self,
        mut out: Vec<Chunk>,
        message: String,
    ) -> (Vec<Chunk>, Option<Message>) {
        self.failed = true;
        while !self.pending.is_empty() {
            if let Err(earlier) = self.take_oldest(&mut out) {
                return (out, Some(earlier)); // a bad row before it is reported first
            }
        }
        let row = self.data_rows + 2;
        (out, Some(format!("row {row}: cannot parse: {message}")))
    }

    fn take_oldest(&mut self, out: &mut Vec<Chunk>) -> Result<(), Message> {
        let result = self.pending.pop_front().expect("a chunk in flight");
        let encoded = match result.recv() {
            Ok(Ok(encoded)) => encoded,
            Ok(Err(Failure::Row(error))) => {
                let row = self.data_rows + error.index + 2;
                return Err(format!("row {row}: {}", error.message));
            }
            Ok(Err(Failure::Content(message))) => return Err(content_error(&message)),
            Err(_) => return Err(content_error("a parse thread ended")),
        };
        self.data_rows += encoded.rows;
        let parquet = match (encoded.parquet, &mut self.parquet) {
            (Some(chunks), Some(file)) if encoded.rows > 0 => {
                let mut group = file
                    .writer
                    .next_row_group()
                    .map_err(|e| content_error(&e.to_string()))?;
                for chunk in chunks {
                    chunk
                        .append_to_row_group(&mut group)
                        .map_err(|e| content_error(&e.to_string()))?;
                }
                group.close().map_err(|e| content_error(&e.to_string()))?;
                file.writer
                    .flush()
                    .map_err(|e| content_error(&e.to_string()))?;
                Some(file.buffer.take())
            }
            _ => None,
        };
        out.push(Chunk {
            rows: encoded.rows,
            jsonl: encoded.jsonl,
            parquet,
            columns: encoded.columns,
        });
        Ok(())
    }

    fn stop(&mut self) {
        self.jobs = None; // the threads end once the queue is empty
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for Converter {
    fn drop(&mut self) {
        self.pending.clear();
        self.stop();
    }
}

fn content_error(detail: &str) -> Message {
    let first = detail
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(200)
        .collect::<String>();
    format!("the content can't be converted: the parser failed on it ({first})")
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic".to_string()
    }
}

/// Builds what the configuration asks for from each record.
struct Outputs<'c> {
    prefixes: &'c [Vec<u8>],
    jsonl: Option<Vec<u8>>,
    columns: Option<Vec<TextColumn>>,
}

impl RecordSink for Outputs<'_> {
    fn record(&mut self, record: &Record<'_>) {
        if let Some(out) = &mut self.jsonl {
            for (i, prefix) in self.prefixes.iter().enumerate() {
                out.extend_from_slice(prefix);
                json::write_str(out, record.field(i));
            }
            out.extend_from_slice(b"}\n");
        }
        if let Some(columns) = &mut self.columns {
            for (i, column) in columns.iter_mut().enumerate() {
                column.values.extend_from_slice(record.field(i));
                column.offsets.push(column.values.len() as i64);
            }
        }
    }
}

fn encode(
    data: &[u8],
    index: usize,
    config: &Config,
    factory: Option<&Factories>,
) -> Result<Encoded, Failure> {
    let prefixes = json::key_prefixes(&config.header);
    let width = config.header.len();
    let share = data.len() / width.max(1);
    let mut outputs = Outputs {
        prefixes: &prefixes,
        jsonl: config
            .jsonl
            .then(|| Vec::with_capacity(data.len() + data.len() / 2)),
        columns: (config.parquet || config.columns).then(|| {
            (0..width)
                .map(|_| TextColumn {
                    offsets: {
                        let mut offsets = Vec::with_capacity(1024);
                        offsets.push(0);
                        offsets
                    },
                    values: Vec::with_capacity(share),
                })
                .collect()
        }),
    };
    let rows =
        parse(data, config.delimiter, config.quote, width, &mut outputs).map_err(Failure::Row)?;
    let mut parquet = None;
    let mut columns = outputs.columns;
    if let Some(factory) = factory {
        // Typed mode never asks for Parquet here (the caller writes typed columns itself).
        let text = columns.take().unwrap_or_default();
        if rows > 0 {
            parquet = Some(encode_parquet(text, index, config, factory).map_err(Failure::Content)?);
        }
    }
    Ok(Encoded {
        rows,
        jsonl: outputs.jsonl,
        parquet,
        columns,
    })
}

fn encode_parquet(
    columns: Vec<TextColumn>,
    index: usize,
    config: &Config,
    factories: &Factories,
) -> Result<Vec<ArrowColumnChunk>, Message> {
    let schema = text_schema(&config.header);
    let create = |factory: &ArrowRowGroupWriterFactory| {
        factory
            .create_column_writers(index)
            .map_err(|e| e.to_string())
    };
    let (dictionary, plain) = (create(&factories.dictionary)?, create(&factories.plain)?);
    let mut writers = Vec::with_capacity(columns.len());
    for (column, (with, without)) in columns.iter().zip(dictionary.into_iter().zip(plain)) {
        writers.push(if dictionary_pays(column) {
            with
        } else {
            without
        });
    }
    for ((column, field), writer) in columns
        .into_iter()
        .zip(schema.fields())
        .zip(writers.iter_mut())
    {
        // Safety: offsets are monotonic from 0 to values.len(), and the parser checked that the
        // values are valid UTF-8 field by field.
        let array: ArrayRef = Arc::new(unsafe {
            LargeStringArray::new_unchecked(
                OffsetBuffer::new_unchecked(ScalarBuffer::from(column.offsets)),
                Buffer::from_vec(column.values),
                None,
            )
        });
        for leaf in compute_leaves(field, &array).map_err(|e| e.to_string())? {
            writer.write(&leaf).map_err(|e| e.to_string())?;
        }
    }
    writers
        .into_iter()
        .map(|writer| writer.close().map_err(|e| e.to_string()))
        .collect()
}
