//! A worker's job: one chunk parsed and converted as the typing says (text, inferred or given
//! types, a data contract) into JSON Lines bytes and Arrow arrays for the Parquet writer.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;

use arrow_array::{ArrayRef, LargeStringArray};
use arrow_buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use crossbeam_channel::{bounded, unbounded, Receiver, Sender};

use crate::buffers::Buffers;
use crate::contract::{Checked, ContractSink};
use crate::json;
use crate::options::{Config, Typing};
use crate::parse::{parse, Record, RecordSink, RowError};
use crate::typed::{self, TypedSink};
use crate::types::Kind;

/// Why a chunk failed.
pub enum Failure {
    /// A record of the chunk (index within it).
    Row(RowError),
    /// The whole content (a panic, an encoder error).
    Content(String),
}

pub struct Job {
    pub data: Vec<u8>,
    /// Inferred or given types: the columns' types, and whether outputs are built (not while
    /// scanning for the widest types before a restart).
    pub kinds: Option<Arc<Vec<Kind>>>,
    pub build: bool,
}

/// What a chunk gave.
#[derive(Default)]
pub struct Encoded {
    pub rows: usize,
    /// The chunk's input bytes.
    pub bytes: usize,
    pub jsonl: Option<Vec<u8>>,
    /// One array per column, for the Parquet row group.
    pub arrays: Option<Vec<ArrayRef>>,
    /// Inferred types: per column, the types every value fits, and the first misfits.
    pub masks: Vec<u8>,
    pub misfits: Vec<typed::Misfit>,
    /// Whether the outputs hold every record (a misfit stops them).
    pub built: bool,
    /// A data contract's findings (the rows above are the valid ones).
    pub checked: Option<Checked>,
}

/// The JSON keys of the output's columns and of the file's.
pub struct Keys {
    pub output: Vec<Vec<u8>>,
    pub header: Vec<Vec<u8>>,
}

impl Keys {
    pub fn new(config: &Config) -> Keys {
        let header = json::key_prefixes(&config.header);
        let output = match &config.typing {
            Typing::Contract(contract) => json::key_prefixes(&contract.names()),
            _ => header.clone(),
        };
        Keys { output, header }
    }
}

/// Parses and encodes one chunk; its JSON Lines are written into a buffer from `outputs`.
pub fn encode(
    job: &Job,
    config: &Config,
    keys: &Keys,
    outputs: &Buffers,
) -> Result<Encoded, Failure> {
    let data = &job.data;
    let width = config.header.len();
    let arrays = config.outputs.parquet();
    let jsonl = (config.outputs.jsonl() && job.build).then(|| outputs.take(data.len() * 3 / 2));
    // the arrays' room, so that they are not grown (copied) value by value: the chunk's bytes,
    // and its lines (at least its records)
    let size = (data.len(), memchr::memchr_iter(b'\n', data).count() + 1);
    if let Typing::Contract(contract) = &config.typing {
        let mut sink = ContractSink::new(contract, &keys.output, &keys.header, jsonl, arrays, size);
        read(data, config, &mut sink)?;
        let mut checked = sink.finish();
        return Ok(Encoded {
            rows: checked.rows,
            bytes: data.len(),
            jsonl: checked.jsonl.take(),
            arrays: checked.arrays.take(),
            built: true,
            checked: Some(checked),
            ..Encoded::default()
        });
    }
    if let Some(kinds) = &job.kinds {
        let mut sink = TypedSink::new(kinds, &keys.output, jsonl, arrays, job.build, size);
        let rows = read(data, config, &mut sink)?;
        let built = sink.built();
        let masks = std::mem::take(&mut sink.masks);
        let misfits = std::mem::take(&mut sink.misfits);
        let (jsonl, arrays) = sink.finish();
        return Ok(Encoded {
            rows,
            bytes: data.len(),
            jsonl,
            arrays,
            masks,
            misfits,
            built,
            checked: None,
        });
    }
    let mut text = Text::new(&keys.output, jsonl, arrays, width, size);
    let rows = read(data, config, &mut text)?;
    Ok(Encoded {
        rows,
        bytes: data.len(),
        jsonl: text.jsonl,
        arrays: text
            .columns
            .map(|columns| columns.into_iter().map(text_array).collect()),
        built: true,
        ..Encoded::default()
    })
}

fn read<S: RecordSink>(data: &[u8], config: &Config, sink: &mut S) -> Result<usize, Failure> {
    let dialect = &config.dialect;
    parse(
        data,
        dialect.delimiter,
        dialect.quote,
        config.header.len(),
        sink,
    )
    .map_err(Failure::Row)
}

type Outcome = std::result::Result<Encoded, Failure>;
pub type Reply = Receiver<Outcome>;

/// The worker threads: jobs in, each job's result on its own channel.
pub struct Workers {
    jobs: Option<Sender<(Job, Sender<Outcome>)>>,
    threads: Vec<JoinHandle<()>>,
}

impl Workers {
    /// `inputs`: where a job's chunk goes back once parsed; `outputs`: where its JSON Lines
    /// buffer comes from.
    pub fn new(config: &Arc<Config>, inputs: &Buffers, outputs: &Buffers) -> Workers {
        let (jobs, queue) = unbounded::<(Job, Sender<_>)>();
        let keys = Arc::new(Keys::new(config));
        let threads = (0..config.workers.max(1))
            .map(|i| {
                let (queue, config, keys) = (queue.clone(), Arc::clone(config), Arc::clone(&keys));
                let (inputs, outputs) = (inputs.clone(), outputs.clone());
                std::thread::Builder::new()
                    .name(format!("chute-parse-{i}"))
                    .spawn(move || {
                        for (job, reply) in queue {
                            let encoded = catch_unwind(AssertUnwindSafe(|| {
                                encode(&job, &config, &keys, &outputs)
                            }));
                            let result = encoded.unwrap_or_else(|panic| {
                                Err(Failure::Content(panic_message(&panic)))
                            });
                            inputs.give(job.data);
                            let _ = reply.send(result);
                        }
                    })
                    .expect("spawn a parse thread")
            })
            .collect();
        Workers {
            jobs: Some(jobs),
            threads,
        }
    }

    pub fn submit(&self, job: Job) -> Reply {
        let (reply, result) = bounded(1);
        if let Some(jobs) = &self.jobs {
            jobs.send((job, reply))
                .expect("parse threads run while jobs are sent");
        }
        result
    }

    pub fn stop(&mut self) {
        self.jobs = None; // the threads end once the queue is empty
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
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

/// One chunk's text column: Arrow large-string offsets and values.
struct TextColumn {
    offsets: Vec<i64>,
    values: Vec<u8>,
}

/// Text mode: every value as written.
struct Text<'c> {
    prefixes: &'c [Vec<u8>],
    jsonl: Option<Vec<u8>>,
    columns: Option<Vec<TextColumn>>,
}

impl<'c> Text<'c> {
    fn new(
        prefixes: &'c [Vec<u8>],
        jsonl: Option<Vec<u8>>,
        arrays: bool,
        width: usize,
        (bytes, rows): (usize, usize),
    ) -> Self {
        let share = bytes / width.max(1);
        let column = || {
            let mut offsets = Vec::with_capacity(rows + 1);
            offsets.push(0);
            TextColumn {
                offsets,
                values: Vec::with_capacity(share),
            }
        };
        Text {
            prefixes,
            jsonl,
            columns: arrays.then(|| (0..width).map(|_| column()).collect()),
        }
    }
}

impl RecordSink for Text<'_> {
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
