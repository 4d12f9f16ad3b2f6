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
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;

use crate::groups::{Encoders, Factories};
use crate::json;
use crate::parse::{parse, Record, RecordSink, RowError};
use crate::split::Splitter;
use crate::typed::{self, Classify, TypedSink};
use crate::types::{Kind, ALL};

/// How values are typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Typing {
    /// Every value a string, exactly as written.
    Text,
    /// Types inferred from the first chunk, widened by the values that follow: a column that a
    /// later value doesn't fit ends the output (the conversion must start again, `restart`).
    Infer,
    /// These types, which every value must fit (a conversion started again with the types the
    /// whole file fits: a value that doesn't is the source changing between the two reads).
    Fixed(Vec<Kind>),
}

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
    pub typing: Typing,
    /// A Parquet row group ends once it holds this many rows or input bytes.
    pub row_group_rows: usize,
    pub row_group_bytes: usize,
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
    /// The chunk's input bytes.
    bytes: usize,
    jsonl: Option<Vec<u8>>,
    /// One array per column, for the Parquet row group.
    arrays: Option<Vec<ArrayRef>>,
    columns: Option<Vec<TextColumn>>,
    /// Typed mode: per column, the types every value fits, and the first misfits.
    masks: Vec<u8>,
    misfits: Vec<typed::Misfit>,
    /// Typed mode: whether the outputs hold every record (a misfit stops them).
    built: bool,
}

/// A column converted with a narrower type than its values need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Widening {
    pub column: usize,
    pub from: Kind,
    pub to: Kind,
    /// The row (header = 1) and value that first didn't fit.
    pub row: usize,
    pub value: String,
}

enum Failure {
    /// A record of the chunk (index within it).
    Row(RowError),
    /// The whole content (a panic, an encoder error).
    Content(String),
}

struct Job {
    data: Vec<u8>,
    /// Typed mode: the columns' types, and whether outputs are built (not while scanning for
    /// the widest types before a restart).
    kinds: Option<Arc<Vec<Kind>>>,
    build: bool,
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
    encoders: Encoders,
    /// Rows and input bytes of the row group being encoded.
    rows: usize,
    bytes: usize,
}

impl ParquetFile {
    /// Closes the row group being encoded (if it has rows): its bytes in the file.
    fn close_group(&mut self) -> Result<Option<Vec<u8>>, Message> {
        if self.rows == 0 {
            return Ok(None);
        }
        let chunks = self.encoders.close()?;
        self.rows = 0;
        self.bytes = 0;
        let mut group = self.writer.next_row_group().map_err(|e| e.to_string())?;
        for chunk in chunks {
            chunk
                .append_to_row_group(&mut group)
                .map_err(|e| e.to_string())?;
        }
        group.close().map_err(|e| e.to_string())?;
        self.writer.flush().map_err(|e| e.to_string())?;
        Ok(Some(self.buffer.take()))
    }
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
    /// Typed mode: the types written (None until inferred), what every value read fits, the
    /// first misfit per column, and whether the output was given up (a restart is needed).
    kinds: Option<Arc<Vec<Kind>>>,
    masks: Vec<u8>,
    misfits: Vec<Option<(usize, String)>>,
    restart: bool,
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

/// Rows per data page at most. Pages otherwise end at 1 MiB of encoded values; but a dictionary
/// column's indices are held as 8-byte integers until its page ends, and a million indices of a
/// few bits fit in 1 MiB: 8 MiB per column per row group. 131,072 rows bound that to 1 MiB.
const PAGE_ROWS: usize = 1 << 17;

fn writer_properties(level: i32, dictionary: bool) -> Result<WriterProperties, Message> {
    let level = ZstdLevel::try_new(level).map_err(|e| e.to_string())?;
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_dictionary_enabled(dictionary)
        // min/max per page: the column index and offset index (the page index) are written
        .set_statistics_enabled(EnabledStatistics::Page)
        // pages end at 1 MiB (the default) or PAGE_ROWS, not at 20,000 rows: short values
        // compress better in large pages
        .set_data_page_row_count_limit(PAGE_ROWS)
        .build())
}

/// A Parquet file of this schema, and the column-writer factories its row groups are encoded with.
fn parquet_file(schema: SchemaRef, config: &Config) -> Result<ParquetFile, Message> {
    let level = config.zstd_level;
    let buffer = SharedBuffer::default();
    let props = writer_properties(level, true)?;
    let writer = ArrowWriter::try_new(buffer.clone(), Arc::clone(&schema), Some(props))
        .map_err(|e| e.to_string())?;
    let (writer, dictionary) = writer.into_serialized_writer().map_err(|e| e.to_string())?;
    // Only its factory is used: column chunks encoded without a dictionary, appended to the real
    // file's row groups like the others.
    let props = writer_properties(level, false)?;
    let unused = ArrowWriter::try_new(std::io::sink(), Arc::clone(&schema), Some(props))
        .map_err(|e| e.to_string())?;
    let (_, plain) = unused.into_serialized_writer().map_err(|e| e.to_string())?;
    let factories = Arc::new(Factories { dictionary, plain });
    Ok(ParquetFile {
        writer,
        buffer,
        encoders: Encoders::new(schema, factories, config.workers),
        rows: 0,
        bytes: 0,
    })
}

impl Converter {
    pub fn new(config: Config) -> Result<Self, Message> {
        let config = Arc::new(config);
        let width = config.header.len();
        let kinds = match &config.typing {
            Typing::Text | Typing::Infer => None,
            Typing::Fixed(kinds) => {
                if kinds.len() != width {
                    return Err(format!("{} types for {width} columns", kinds.len()));
                }
                Some(Arc::new(kinds.clone()))
            }
        };
        let (jobs, queue) = unbounded::<Job>();
        let threads = (0..config.workers.max(1))
            .map(|i| {
                let queue = queue.clone();
                let config = Arc::clone(&config);
                std::thread::Builder::new()
                    .name(format!("chute-parse-{i}"))
                    .spawn(move || {
                        for job in queue {
                            let result = catch_unwind(AssertUnwindSafe(|| encode(&job, &config)))
                                .unwrap_or_else(|panic| {
                                    Err(Failure::Content(panic_message(&panic)))
                                });
                            let _ = job.reply.send(result);
                        }
                    })
                    .expect("spawn a parse thread")
            })
            .collect();
        let mut converter = Converter {
            splitter: Splitter::new(config.quote, config.max_record),
            masks: kinds
                .as_ref()
                .map(|k| k.iter().map(|kind| kind.mask()).collect())
                .unwrap_or_else(|| vec![ALL; width]),
            misfits: vec![None; width],
            config,
            jobs: Some(jobs),
            threads,
            pending: VecDeque::new(),
            submitted: 0,
            data_rows: 0,
            parquet: None,
            failed: false,
            kinds: None,
            restart: false,
        };
        match &converter.config.typing {
            Typing::Text => converter.open_parquet(None)?,
            Typing::Fixed(_) => converter.open_parquet(kinds)?,
            Typing::Infer => {} // once the first chunk tells the types
        }
        Ok(converter)
    }

    /// Starts the Parquet file (if asked for) once the column types are known.
    fn open_parquet(&mut self, kinds: Option<Arc<Vec<Kind>>>) -> Result<(), Message> {
        if self.config.parquet {
            let schema = match &kinds {
                Some(kinds) => typed::schema(&self.config.header, kinds),
                None => text_schema(&self.config.header),
            };
            self.parquet = Some(parquet_file(schema, &self.config)?);
        }
        self.kinds = kinds;
        Ok(())
    }

    /// Infer mode: the types of the first chunk's values (its errors are reported when a worker
    /// parses it, in order).
    fn infer(&mut self, data: &[u8]) -> Result<(), Message> {
        let mut classify = Classify {
            masks: vec![ALL; self.config.header.len()],
        };
        let width = self.config.header.len();
        let _ = parse(
            data,
            self.config.delimiter,
            self.config.quote,
            width,
            &mut classify,
        );
        let kinds = classify.masks.iter().map(|m| Kind::of(*m)).collect();
        self.masks = classify.masks;
        self.open_parquet(Some(Arc::new(kinds)))
    }

    /// Typed mode: the types the whole file's values fit (after `finish`), Unknown for a column
    /// of null markers only.
    pub fn kinds(&self) -> Option<Vec<Kind>> {
        self.kinds
            .as_ref()
            .map(|_| self.masks.iter().map(|m| Kind::of(*m)).collect())
    }

    /// Typed mode: each column's mask of the types every value read fits (after `finish`: the
    /// whole input's). Masks of parts of one file AND into the whole file's (the fan-out).
    pub fn masks(&self) -> Option<&[u8]> {
        self.kinds.as_ref().map(|_| self.masks.as_slice())
    }

    /// Whether the output was given up because a column had to be widened: convert again with
    /// `kinds()` (Typing::Fixed).
    pub fn restart(&self) -> bool {
        self.restart
    }

    /// The columns whose type the values widened, with the first value that didn't fit.
    pub fn widenings(&self) -> Vec<Widening> {
        let (Some(written), Some(now)) = (&self.kinds, self.kinds()) else {
            return Vec::new();
        };
        written
            .iter()
            .zip(now)
            .enumerate()
            .filter(|(_, (from, to))| changed(**from, *to))
            .map(|(column, (from, to))| {
                let (row, value) = self.misfits[column].clone().unwrap_or_default();
                Widening {
                    column,
                    from: *from,
                    to,
                    row,
                    value,
                }
            })
            .collect()
    }

    /// Takes the next decompressed block; the chunks completed in file order. On an error the
    /// chunks before it are returned with it (the caller writes them, then reports the error).
    pub fn feed(&mut self, block: &[u8]) -> (Vec<Chunk>, Option<Message>) {
        let mut out = Vec::new();
        if self.failed {
            return (out, Some("the conversion has already failed".into()));
        }
        match self.splitter.push(block) {
            Ok(Some(chunk)) => {
                if let Err(message) = self.submit(chunk) {
                    self.failed = true;
                    return (out, Some(content_error(&message)));
                }
            }
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
            Ok(Some(chunk)) => {
                if let Err(message) = self.submit(chunk) {
                    self.failed = true;
                    return (out, Some(content_error(&message)), Vec::new());
                }
            }
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
        if self.config.typing == Typing::Infer && self.kinds.is_none() {
            // no data: every column text
            let kinds = vec![Kind::Unknown; self.config.header.len()];
            if let Err(message) = self.open_parquet(Some(Arc::new(kinds))) {
                return (out, Some(content_error(&message)), Vec::new());
            }
        }
        if self.restart {
            return (out, None, Vec::new()); // the caller converts again, wider
        }
        let tail = match self.parquet.take() {
            Some(mut file) => {
                let last = match file.close_group() {
                    Ok(last) => last.unwrap_or_default(),
                    Err(e) => return (out, Some(content_error(&e)), Vec::new()),
                };
                match file.writer.close() {
                    Ok(_) => [last, file.buffer.take()].concat(),
                    Err(e) => return (out, Some(content_error(&e.to_string())), Vec::new()),
                }
            }
            None => Vec::new(),
        };
        (out, None, tail)
    }

    fn submit(&mut self, data: Vec<u8>) -> Result<(), Message> {
        if self.config.typing == Typing::Infer && self.kinds.is_none() {
            self.infer(&data)?;
        }
        let (reply, result) = bounded(1);
        let job = Job {
            data,
            kinds: self.kinds.clone(),
            build: !self.restart,
            reply,
        };
        self.submitted += 1;
        if let Some(jobs) = &self.jobs {
            jobs.send(job)
                .expect("parse threads run while jobs are sent");
        }
        self.pending.push_back(result);
        Ok(())
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
        if let Some(kinds) = self.kinds.clone() {
            for misfit in &encoded.misfits {
                let row = self.data_rows + misfit.index + 2;
                let first = &mut self.misfits[misfit.column];
                if first.is_none() {
                    *first = Some((row, misfit.value.clone()));
                }
            }
            for (mask, chunk) in self.masks.iter_mut().zip(&encoded.masks) {
                *mask &= chunk;
            }
            if !self.restart {
                let widened = kinds
                    .iter()
                    .zip(&self.masks)
                    .position(|(kind, mask)| changed(*kind, Kind::of(*mask)));
                if let Some(column) = widened {
                    if let Typing::Fixed(_) = self.config.typing {
                        let (row, value) = self.misfits[column].clone().unwrap_or_default();
                        return Err(format!(
                            "row {row}: column {:?}: {:?} is not a valid {} (did the file change \
                             while it was read again?)",
                            self.config.header[column],
                            value,
                            kinds[column].name()
                        ));
                    }
                    self.restart = true; // this chunk's output and the rest are given up
                }
            }
        }
        self.data_rows += encoded.rows;
        if self.restart {
            return Ok(());
        }
        if !encoded.built {
            // a misfit always narrows its column's type: never an output silently left out
            return Err(content_error(
                "a chunk was not converted and no type widened",
            ));
        }
        let parquet = match (encoded.arrays, &mut self.parquet) {
            (Some(arrays), Some(file)) if encoded.rows > 0 => {
                file.encoders.write(arrays).map_err(|e| content_error(&e))?;
                file.rows += encoded.rows;
                file.bytes += encoded.bytes;
                if file.rows >= self.config.row_group_rows
                    || file.bytes >= self.config.row_group_bytes
                {
                    file.close_group().map_err(|e| content_error(&e))?
                } else {
                    None
                }
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

fn encode(job: &Job, config: &Config) -> Result<Encoded, Failure> {
    let data = &job.data;
    let prefixes = json::key_prefixes(&config.header);
    let width = config.header.len();
    if let Some(kinds) = &job.kinds {
        let mut sink = TypedSink::new(
            kinds,
            &prefixes,
            config.jsonl,
            config.parquet,
            job.build,
            data.len(),
        );
        let rows =
            parse(data, config.delimiter, config.quote, width, &mut sink).map_err(Failure::Row)?;
        let built = sink.built();
        let masks = std::mem::take(&mut sink.masks);
        let misfits = std::mem::take(&mut sink.misfits);
        let (jsonl, arrays) = sink.finish();
        return Ok(Encoded {
            rows,
            bytes: data.len(),
            jsonl,
            arrays,
            columns: None,
            masks,
            misfits,
            built,
        });
    }
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
    let mut arrays = None;
    let mut columns = outputs.columns;
    if config.parquet {
        // A contract's typed mode never asks for Parquet here (the caller writes its columns).
        let text = columns.take().unwrap_or_default();
        arrays = Some(text.into_iter().map(text_array).collect());
    }
    Ok(Encoded {
        rows,
        bytes: data.len(),
        jsonl: outputs.jsonl,
        arrays,
        columns,
        masks: Vec::new(),
        misfits: Vec::new(),
        built: true,
    })
}

fn text_array(column: TextColumn) -> ArrayRef {
    // Safety: offsets are monotonic from 0 to values.len(), and the parser checked that the
    // values are valid UTF-8 field by field.
    Arc::new(unsafe {
        LargeStringArray::new_unchecked(
            OffsetBuffer::new_unchecked(ScalarBuffer::from(column.offsets)),
            Buffer::from_vec(column.values),
            None,
        )
    })
}

/// Whether a column written as `written` must be converted again as `now` (a column of null
/// markers only, written as text, stays text when a text value comes).
fn changed(written: Kind, now: Kind) -> bool {
    written != now && !(written == Kind::Unknown && now == Kind::String)
}
