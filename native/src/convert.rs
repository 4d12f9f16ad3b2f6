//! The chunk loop: cut -> [workers] parse, check, encode -> [in order] outputs.
//!
//! The caller feeds decompressed blocks; each block that completes records becomes a chunk,
//! parsed and encoded by a worker thread (native/src/encode.rs). Results are taken in file
//! order, where what depends on the chunks before is done: row numbers, a contract's error
//! budget, widening inferred types, the Parquet row groups. At most `workers` chunks are in
//! flight, so memory stays a few chunks whatever the file's size.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::Arc;

use crate::buffers::Buffers;
use crate::contract::{Checked, Policy};
use crate::encode::{Encoded, Failure, Job, Reply, Workers};
use crate::error::{Error, Problem, Result, RowFault, Violation};
use crate::parquet_file::{text_schema, ParquetFile};
use crate::parse::{parse, RowError};
use crate::split::{SplitError, Splitter};
use crate::typed::{self, Classify};
use crate::types::{Kind, ALL};

pub use crate::options::{Config, Dialect, Outputs, Typing};

/// What one chunk gave, in file order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Chunk {
    /// Rows written (a contract's valid rows).
    pub rows: usize,
    pub jsonl: Option<Vec<u8>>,
    /// Parquet bytes: a row group, when the chunk filled one.
    pub parquet: Option<Vec<u8>>,
    /// A contract's rejected rows: how many, and as JSON Lines (with `_row` and `_errors`).
    pub rejected_rows: usize,
    pub rejected: Option<Vec<u8>>,
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

/// Inferred or given types, as the chunks come in order.
struct Inferred {
    /// The types written (None until inferred from the first chunk).
    kinds: Option<Arc<Vec<Kind>>>,
    /// What every value read fits, and the first misfit per column.
    masks: Vec<u8>,
    misfits: Vec<Option<(usize, String)>>,
    /// Whether the output was given up (a restart is needed).
    restart: bool,
}

pub struct Converter {
    config: Arc<Config>,
    /// The JSON Lines buffers: the caller gives each chunk's back once written.
    outputs: Buffers,
    splitter: Splitter,
    workers: Workers,
    pending: VecDeque<Reply>,
    data_rows: usize,
    parquet: Option<ParquetFile>,
    failed: bool,
    inferred: Inferred,
    /// A contract's findings so far (exact counts, the first problems).
    violation: Violation,
}

impl Converter {
    pub fn new(config: Config) -> Result<Self> {
        let config = Arc::new(config);
        let width = config.header.len();
        let kinds = match &config.typing {
            Typing::Fixed(kinds) if kinds.len() != width => {
                return Err(Error::Options(format!(
                    "{} types for {width} columns",
                    kinds.len()
                )));
            }
            Typing::Fixed(kinds) => Some(Arc::new(kinds.clone())),
            _ => None,
        };
        // as many buffers wait as there are chunks in flight: the workers' and the next ones
        let (inputs, outputs) = (
            Buffers::new(config.workers + 2),
            Buffers::new(config.workers + 2),
        );
        let mut converter = Converter {
            splitter: Splitter::new(
                config.dialect.quote,
                config.dialect.max_record,
                inputs.clone(),
            ),
            workers: Workers::new(&config, &inputs, &outputs),
            outputs,
            inferred: Inferred {
                masks: kinds
                    .as_ref()
                    .map(|k| k.iter().map(|kind| kind.mask()).collect())
                    .unwrap_or_else(|| vec![ALL; width]),
                misfits: vec![None; width],
                kinds: None,
                restart: false,
            },
            config,
            pending: VecDeque::new(),
            data_rows: 0,
            parquet: None,
            failed: false,
            violation: Violation::default(),
        };
        match &converter.config.typing {
            Typing::Text => converter.open_parquet(None)?,
            Typing::Fixed(_) => converter.open_parquet(kinds)?,
            Typing::Contract(_) => converter.open_parquet(None)?,
            Typing::Infer => {} // once the first chunk tells the types
        }
        Ok(converter)
    }

    /// Where a chunk's JSON Lines buffer goes back once written (taken again for a later chunk).
    pub fn outputs(&self) -> &Buffers {
        &self.outputs
    }

    /// Starts the Parquet file (if asked for) once the column types are known.
    fn open_parquet(&mut self, kinds: Option<Arc<Vec<Kind>>>) -> Result<()> {
        if self.config.outputs.parquet() {
            let schema = match (&self.config.typing, &kinds) {
                (Typing::Contract(contract), _) => {
                    typed::schema(&contract.names(), &contract.kinds())
                }
                (_, Some(kinds)) => typed::schema(&self.config.header, kinds),
                (_, None) => text_schema(&self.config.header),
            };
            let threads = self.config.workers.max(1);
            self.parquet = Some(ParquetFile::new(schema, self.config.layout, threads)?);
        }
        self.inferred.kinds = kinds;
        Ok(())
    }

    /// Infer mode: the types of the first chunk's values (its errors are reported when a worker
    /// parses it, in order).
    fn infer(&mut self, data: &[u8]) -> Result<()> {
        let width = self.config.header.len();
        let mut classify = Classify {
            masks: vec![ALL; width],
        };
        let dialect = self.config.dialect;
        let _ = parse(data, dialect.delimiter, dialect.quote, width, &mut classify);
        let kinds = classify.masks.iter().map(|m| Kind::of(*m)).collect();
        self.inferred.masks = classify.masks;
        self.open_parquet(Some(Arc::new(kinds)))
    }

    /// Typed mode: the types the whole file's values fit (after `finish`), Unknown for a column
    /// of null markers only.
    pub fn kinds(&self) -> Option<Vec<Kind>> {
        let inferred = &self.inferred;
        inferred
            .kinds
            .as_ref()
            .map(|_| inferred.masks.iter().map(|m| Kind::of(*m)).collect())
    }

    /// Typed mode: each column's mask of the types every value read fits (after `finish`: the
    /// whole input's). Masks of parts of one file AND into the whole file's (the fan-out).
    pub fn masks(&self) -> Option<&[u8]> {
        let inferred = &self.inferred;
        inferred.kinds.as_ref().map(|_| inferred.masks.as_slice())
    }

    /// Whether the output was given up because a column had to be widened: convert again with
    /// `kinds()` (Typing::Fixed).
    pub fn restart(&self) -> bool {
        self.inferred.restart
    }

    /// A contract's findings: exact counts and the first problems (the report limit).
    pub fn violation(&self) -> &Violation {
        &self.violation
    }

    /// The columns whose type the values widened, with the first value that didn't fit.
    pub fn widenings(&self) -> Vec<Widening> {
        let (Some(written), Some(now)) = (&self.inferred.kinds, self.kinds()) else {
            return Vec::new();
        };
        let misfit = |column: usize| self.inferred.misfits[column].clone().unwrap_or_default();
        written
            .iter()
            .zip(now)
            .enumerate()
            .filter(|(_, (from, to))| changed(**from, *to))
            .map(|(column, (from, to))| {
                let (row, value) = misfit(column);
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
    pub fn feed(&mut self, block: &[u8]) -> (Vec<Chunk>, Option<Error>) {
        let mut out = Vec::new();
        if self.failed {
            return (out, Some(Error::AlreadyFailed));
        }
        let result = match self.splitter.push(block) {
            Ok(Some(chunk)) => self.submit(chunk),
            Ok(None) => Ok(()),
            Err(e) => return self.fail_after_pending(out, e),
        };
        let taken = result.and_then(|()| {
            while self.pending.len() > self.config.workers.max(1) {
                self.take_oldest(&mut out)?;
            }
            Ok(())
        });
        (out, self.failing(taken.err()))
    }

    /// At the end of the stream: the remaining chunks, then the Parquet file's last bytes.
    pub fn finish(&mut self) -> (Vec<Chunk>, Option<Error>, Vec<u8>) {
        let mut out = Vec::new();
        if self.failed {
            return (out, Some(Error::AlreadyFailed), Vec::new());
        }
        let submitted = match self.splitter.finish() {
            Ok(Some(chunk)) => self.submit(chunk),
            Ok(None) => Ok(()),
            Err(e) => {
                let (out, error) = self.fail_after_pending(out, e);
                return (out, error, Vec::new());
            }
        };
        let result = submitted.and_then(|()| {
            while !self.pending.is_empty() {
                self.take_oldest(&mut out)?;
            }
            self.workers.stop();
            self.close()
        });
        match result {
            Ok(tail) => (out, None, tail),
            Err(error) => (out, self.failing(Some(error)), Vec::new()),
        }
    }

    fn failing(&mut self, error: Option<Error>) -> Option<Error> {
        self.failed |= error.is_some();
        error
    }

    /// The Parquet file's last bytes (none when the conversion must start again).
    fn close(&mut self) -> Result<Vec<u8>> {
        if matches!(self.config.typing, Typing::Infer) && self.inferred.kinds.is_none() {
            // no data: every column text
            let kinds = vec![Kind::Unknown; self.config.header.len()];
            self.open_parquet(Some(Arc::new(kinds)))?;
        }
        if self.inferred.restart {
            return Ok(Vec::new()); // the caller converts again, wider
        }
        match self.parquet.take() {
            Some(file) => file.close(),
            None => Ok(Vec::new()),
        }
    }

    fn submit(&mut self, data: Vec<u8>) -> Result<()> {
        if matches!(self.config.typing, Typing::Infer) && self.inferred.kinds.is_none() {
            self.infer(&data)?;
        }
        let job = Job {
            data,
            kinds: self.inferred.kinds.clone(),
            build: !self.inferred.restart,
        };
        self.pending.push_back(self.workers.submit(job));
        Ok(())
    }

    /// A cut that failed: the record at fault is the one after every row of the chunks before.
    fn fail_after_pending(
        &mut self,
        mut out: Vec<Chunk>,
        cut: SplitError,
    ) -> (Vec<Chunk>, Option<Error>) {
        self.failed = true;
        while !self.pending.is_empty() {
            if let Err(earlier) = self.take_oldest(&mut out) {
                return (out, Some(earlier)); // a bad row before it is reported first
            }
        }
        let row = self.data_rows + 2;
        let fault = RowFault::Cut(cut);
        (out, Some(Error::Row { row, fault }))
    }

    /// The oldest chunk in flight, in file order: its outputs, or why the file fails there.
    fn take_oldest(&mut self, out: &mut Vec<Chunk>) -> Result<()> {
        let result = self.pending.pop_front().expect("a chunk in flight");
        let mut encoded = match result.recv() {
            Ok(Ok(encoded)) => encoded,
            Ok(Err(Failure::Row(RowError { index, problem }))) => {
                let row = self.data_rows + index + 2;
                let fault = RowFault::Record(problem);
                return Err(Error::Row { row, fault });
            }
            Ok(Err(Failure::Content(message))) => return Err(Error::content(message)),
            Err(_) => return Err(Error::content("a parse thread ended")),
        };
        self.widen(&encoded)?;
        let first_row = self.data_rows + 2;
        let checked = encoded.checked.take();
        self.data_rows += checked.as_ref().map_or(encoded.rows, |c| {
            c.rows + c.bad_rows // every record of the chunk
        });
        if self.inferred.restart {
            return Ok(());
        }
        if !encoded.built {
            // a misfit always narrows its column's type: never an output silently left out
            return Err(Error::content(
                "a chunk was not converted and no type widened",
            ));
        }
        let (rejected_rows, rejected) = match checked {
            Some(checked) => self.check(checked, first_row)?,
            None => (0, None),
        };
        let parquet = match (encoded.arrays.take(), &mut self.parquet) {
            (Some(arrays), Some(file)) => file.write(arrays, encoded.rows, encoded.bytes)?,
            _ => None,
        };
        out.push(Chunk {
            rows: encoded.rows,
            jsonl: encoded.jsonl,
            parquet,
            rejected_rows,
            rejected,
        });
        Ok(())
    }

    /// Inferred types: what the chunk's values fit; a column they widen gives the output up
    /// (with given types, it is an error: the file changed between two reads).
    fn widen(&mut self, encoded: &Encoded) -> Result<()> {
        let Some(kinds) = self.inferred.kinds.clone() else {
            return Ok(());
        };
        let inferred = &mut self.inferred;
        for misfit in &encoded.misfits {
            let row = self.data_rows + misfit.index + 2;
            let first = &mut inferred.misfits[misfit.column];
            if first.is_none() {
                *first = Some((row, misfit.value.clone()));
            }
        }
        for (mask, chunk) in inferred.masks.iter_mut().zip(&encoded.masks) {
            *mask &= chunk;
        }
        if inferred.restart {
            return Ok(());
        }
        let widened = kinds
            .iter()
            .zip(&inferred.masks)
            .position(|(kind, mask)| changed(*kind, Kind::of(*mask)));
        match (widened, &self.config.typing) {
            (Some(column), Typing::Fixed(_)) => {
                let (row, value) = inferred.misfits[column].clone().unwrap_or_default();
                let fault = RowFault::Changed {
                    column: self.config.header[column].clone(),
                    value,
                    kind: kinds[column].name(),
                };
                Err(Error::Row { row, fault })
            }
            (Some(_), _) => {
                inferred.restart = true; // this chunk's output and the rest are given up
                Ok(())
            }
            (None, _) => Ok(()),
        }
    }

    /// A contract's chunk, in order: its problems counted against the error policy; its
    /// rejected rows (with their file row numbers).
    fn check(&mut self, checked: Checked, first_row: usize) -> Result<(usize, Option<Vec<u8>>)> {
        let Typing::Contract(contract) = &self.config.typing else {
            unreachable!("checked chunks come from a contract");
        };
        let violation = &mut self.violation;
        violation.problem_count += checked.problem_count;
        violation.bad_rows += checked.bad_rows;
        let room = contract
            .report_limit
            .saturating_sub(violation.problems.len());
        violation
            .problems
            .extend(checked.problems.into_iter().take(room).map(|p| Problem {
                row: first_row + p.index,
                column: contract.columns[p.column].name.clone(),
                value: p.value,
                reason: p.reason,
            }));
        match contract.policy {
            Policy::Reject if violation.problem_count > 0 => {
                return Err(Error::Contract(violation.clone()));
            }
            Policy::DropRows { max_rejected_rows } if violation.bad_rows > max_rejected_rows => {
                let mut failed = violation.clone();
                failed.detail = Some(format!(
                    "more than max_rejected_rows={max_rejected_rows} rows rejected"
                ));
                return Err(Error::Contract(failed));
            }
            _ => {}
        }
        if checked.rejected.is_empty() {
            return Ok((0, None));
        }
        let mut out = Vec::new();
        for row in &checked.rejected {
            out.extend_from_slice(&row.head);
            let _ = write!(out, "{}", first_row + row.index);
            out.extend_from_slice(&row.tail);
        }
        Ok((checked.rejected.len(), Some(out)))
    }
}

impl Drop for Converter {
    fn drop(&mut self) {
        self.pending.clear();
        self.workers.stop();
    }
}

/// Whether a column written as `written` must be converted again as `now` (a column of null
/// markers only, written as text, stays text when a text value comes).
fn changed(written: Kind, now: Kind) -> bool {
    written != now && !(written == Kind::Unknown && now == Kind::String)
}

#[cfg(test)]
mod tests;
