//! Large Parquet row groups (about 1M rows or 128 MiB of input each), encoded as the chunks come.
//!
//! The parse workers hand over each chunk's Arrow arrays in file order; encoder threads, each
//! owning some of the columns, append them to the open row group's column writers (dictionary
//! pages of at most 1 MiB, then plain; pages of 1 MiB; zstd). When the group is full its column
//! chunks (compressed pages, held in memory until then) are closed and appended to the file.
//! Memory: the group's compressed pages plus a few chunks in flight, whatever the file's size.

use std::sync::Arc;
use std::thread::JoinHandle;

use arrow_array::{Array, ArrayRef, LargeStringArray};
use arrow_schema::{DataType, SchemaRef};
use crossbeam_channel::{bounded, Receiver, Sender};
use parquet::arrow::arrow_writer::{
    compute_leaves, ArrowColumnChunk, ArrowColumnWriter, ArrowRowGroupWriterFactory,
};

use crate::error::Error;

pub type Message = Error;

/// Column writers with and without dictionary encoding (chosen per column chunk).
pub struct Factories {
    pub dictionary: ArrowRowGroupWriterFactory,
    pub plain: ArrowRowGroupWriterFactory,
}

/// How many leading values of a column chunk decide its encoding.
const DICTIONARY_SAMPLE: usize = 4096;

/// A dictionary pays unless nearly every value differs (ids, amounts, free text): then its
/// indices compress worse than the plain values under zstd, and the writer would fall back to
/// plain only past 1 MiB of dictionary. Decided on the first values of the column chunk (those
/// of the first arrays, in order, up to `DICTIONARY_SAMPLE`).
pub fn dictionary_pays(arrays: &[&ArrayRef]) -> bool {
    let mut seen = std::collections::HashSet::with_capacity(DICTIONARY_SAMPLE);
    let mut count = 0;
    for array in arrays {
        let take = array.len().min(DICTIONARY_SAMPLE - count);
        let column = array.slice(0, take);
        if let Some(strings) = column.as_any().downcast_ref::<LargeStringArray>() {
            seen.extend((0..take).map(|i| strings.value(i).as_bytes().to_vec()));
        } else {
            let width = match column.data_type() {
                DataType::Int64 | DataType::Float64 | DataType::Timestamp(_, _) => 8,
                DataType::Date32 => 4,
                _ => return true, // booleans: bit-packed either way
            };
            let data = column.to_data();
            let values = &data.buffers()[0].as_slice()[data.offset() * width..];
            seen.extend(values.chunks_exact(width).take(take).map(<[u8]>::to_vec));
        }
        count += take;
        if count == DICTIONARY_SAMPLE {
            break;
        }
    }
    seen.len() * 10 <= count * 9
}

enum Work {
    Write(Arc<Vec<ArrayRef>>),
    Close(Sender<Result<Vec<(usize, ArrowColumnChunk)>, Message>>),
}

type Closed = Receiver<Result<Vec<(usize, ArrowColumnChunk)>, Message>>;

/// The encoder threads of one file.
pub struct Encoders {
    queues: Vec<Sender<Work>>,
    threads: Vec<JoinHandle<()>>,
}

struct Encoder {
    schema: SchemaRef,
    factories: Arc<Factories>,
    columns: Vec<usize>,
    writers: Option<Vec<(usize, ArrowColumnWriter)>>,
    /// The group's first arrays, held until they make a sample to choose the encodings by.
    pending: Vec<Arc<Vec<ArrayRef>>>,
    group: usize,
    error: Option<Message>,
}

impl Encoder {
    fn write(&mut self, arrays: Arc<Vec<ArrayRef>>) -> Result<(), Message> {
        if self.writers.is_none() {
            self.pending.push(arrays);
            let rows: usize = self.pending.iter().map(|a| a[0].len()).sum();
            if rows < DICTIONARY_SAMPLE {
                return Ok(());
            }
            return self.start();
        }
        self.append(&arrays)
    }

    /// Opens the group's column writers, with or without a dictionary as the pending arrays
    /// say, and writes those.
    fn start(&mut self) -> Result<(), Message> {
        let create = |factory: &ArrowRowGroupWriterFactory| {
            factory
                .create_column_writers(self.group)
                .map_err(Error::content)
        };
        let mut dictionary: Vec<Option<ArrowColumnWriter>> = create(&self.factories.dictionary)?
            .into_iter()
            .map(Some)
            .collect();
        let mut plain: Vec<Option<ArrowColumnWriter>> = create(&self.factories.plain)?
            .into_iter()
            .map(Some)
            .collect();
        let pending = std::mem::take(&mut self.pending);
        let writers = self
            .columns
            .iter()
            .map(|&i| {
                let first: Vec<&ArrayRef> = pending.iter().map(|arrays| &arrays[i]).collect();
                let chosen = if dictionary_pays(&first) {
                    dictionary[i].take()
                } else {
                    plain[i].take()
                };
                (i, chosen.expect("one writer per column"))
            })
            .collect();
        self.writers = Some(writers);
        for arrays in pending {
            self.append(&arrays)?;
        }
        Ok(())
    }

    fn append(&mut self, arrays: &[ArrayRef]) -> Result<(), Message> {
        let writers = self.writers.as_mut().expect("writers started");
        for (i, writer) in writers.iter_mut() {
            let field = self.schema.field(*i);
            for leaf in compute_leaves(field, &arrays[*i]).map_err(Error::content)? {
                writer.write(&leaf).map_err(Error::content)?;
            }
        }
        Ok(())
    }

    fn close(&mut self) -> Result<Vec<(usize, ArrowColumnChunk)>, Message> {
        if self.error.is_none() && self.writers.is_none() && !self.pending.is_empty() {
            if let Err(e) = self.start() {
                self.error = Some(e);
            }
        }
        self.group += 1;
        if let Some(error) = self.error.take() {
            self.writers = None;
            self.pending.clear();
            return Err(error);
        }
        let Some(writers) = self.writers.take() else {
            return Ok(Vec::new());
        };
        writers
            .into_iter()
            .map(|(i, writer)| writer.close().map(|c| (i, c)).map_err(Error::content))
            .collect()
    }

    fn run(mut self, queue: Receiver<Work>) {
        for work in queue {
            match work {
                Work::Write(arrays) => {
                    if self.error.is_none() {
                        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            self.write(arrays)
                        }));
                        match result {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => self.error = Some(e),
                            Err(_) => {
                                self.error = Some(Error::content("the Parquet encoder panicked"))
                            }
                        }
                    }
                }
                Work::Close(reply) => {
                    let _ = reply.send(self.close());
                }
            }
        }
    }
}

impl Encoders {
    /// `threads` encoders sharing the columns of `schema` round-robin.
    pub fn new(schema: SchemaRef, factories: Arc<Factories>, threads: usize) -> Self {
        let width = schema.fields().len();
        let count = threads.clamp(1, width.max(1));
        let mut queues = Vec::with_capacity(count);
        let mut handles = Vec::with_capacity(count);
        for e in 0..count {
            // a chunk or two ahead of the slowest encoder, then the caller waits
            let (queue, work) = bounded::<Work>(2);
            let encoder = Encoder {
                schema: Arc::clone(&schema),
                factories: Arc::clone(&factories),
                columns: (e..width).step_by(count).collect(),
                writers: None,
                pending: Vec::new(),
                group: 0,
                error: None,
            };
            handles.push(
                std::thread::Builder::new()
                    .name(format!("chute-encode-{e}"))
                    .spawn(move || encoder.run(work))
                    .expect("spawn an encoder thread"),
            );
            queues.push(queue);
        }
        Encoders {
            queues,
            threads: handles,
        }
    }

    /// Appends one chunk's arrays (one per column) to the open row group.
    pub fn write(&self, arrays: Vec<ArrayRef>) -> Result<(), Message> {
        let arrays = Arc::new(arrays);
        for queue in &self.queues {
            queue
                .send(Work::Write(Arc::clone(&arrays)))
                .map_err(|_| Error::content("an encoder thread ended"))?;
        }
        Ok(())
    }

    /// Closes the open row group: its column chunks in column order.
    pub fn close(&self) -> Result<Vec<ArrowColumnChunk>, Message> {
        let replies: Vec<Closed> = self
            .queues
            .iter()
            .map(|queue| {
                let (reply, closed) = bounded(1);
                queue
                    .send(Work::Close(reply))
                    .map_err(|_| Error::content("an encoder thread ended"))
                    .map(|_| closed)
            })
            .collect::<Result<_, _>>()?;
        let mut chunks = Vec::new();
        for closed in replies {
            chunks.extend(
                closed
                    .recv()
                    .map_err(|_| Error::content("an encoder thread ended"))??,
            );
        }
        chunks.sort_by_key(|(i, _)| *i);
        Ok(chunks.into_iter().map(|(_, chunk)| chunk).collect())
    }
}

impl Drop for Encoders {
    fn drop(&mut self) {
        self.queues.clear(); // the threads end once their queue is empty
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Float64Array, Int64Array};

    #[test]
    fn a_dictionary_only_where_values_repeat() {
        let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..10_000));
        let years: ArrayRef = Arc::new(Int64Array::from_iter_values((0..10_000).map(|i| i % 7)));
        let amounts: ArrayRef = Arc::new(Float64Array::from_iter_values(
            (0..10_000).map(|i| i as f64 * 1.5),
        ));
        let words: ArrayRef = Arc::new(LargeStringArray::from_iter_values(
            (0..10_000).map(|i| ["a", "b", "c"][i % 3]),
        ));
        let texts: ArrayRef = Arc::new(LargeStringArray::from_iter_values(
            (0..10_000).map(|i| format!("row {i}")),
        ));
        let pays = |array: &ArrayRef| dictionary_pays(&[array]);
        assert!(!pays(&ids) && !pays(&amounts) && !pays(&texts));
        assert!(pays(&years) && pays(&words));
        // the sample spans arrays: 840 values repeating, in arrays of 500
        let cyclic: Vec<ArrayRef> = (0..10)
            .map(|k| {
                Arc::new(Int64Array::from_iter_values(
                    (0..500).map(|i| (k * 500 + i) % 840),
                )) as ArrayRef
            })
            .collect();
        assert!(!pays(&cyclic[0]));
        assert!(dictionary_pays(&cyclic.iter().collect::<Vec<_>>()));
    }
}
