//! Cuts a byte stream into chunks of whole records, wherever the reads end.
//!
//! A newline ends a record unless it lies inside a quoted field; inside or outside is told by
//! the parity of the quote characters before it (an escaped quote `""` adds two), which is exact
//! for RFC 4180 quoting however the stream is cut. Each chunk can then be parsed on its own.

use crate::buffers::Buffers;

/// Why the stream can't be cut into records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SplitError {
    /// A record (or a quote never closed) longer than the limit.
    RecordTooLong(usize),
    /// The stream ended inside a quoted field.
    UnterminatedQuote,
}

impl std::fmt::Display for SplitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SplitError::RecordTooLong(limit) => {
                write!(
                    f,
                    "a record longer than {limit} bytes (a quote never closed?)"
                )
            }
            SplitError::UnterminatedQuote => f.write_str("the file ends inside a quoted field"),
        }
    }
}

impl std::error::Error for SplitError {}

/// Holds the bytes after the last complete record until more arrive.
pub struct Splitter {
    quote: u8,
    max_record: usize,
    carry: Vec<u8>,
    /// Where a chunk's buffer comes from (the workers give it back once parsed).
    buffers: Buffers,
}

impl Splitter {
    pub fn new(quote: u8, max_record: usize, buffers: Buffers) -> Self {
        Splitter {
            quote,
            max_record,
            carry: Vec::new(),
            buffers,
        }
    }

    /// The whole records that `block` completes (at most one chunk: everything up to the last
    /// record boundary), or None while no record is complete.
    pub fn push(&mut self, block: &[u8]) -> Result<Option<Vec<u8>>, SplitError> {
        let mut data = self.buffers.take(self.carry.len() + block.len());
        data.extend_from_slice(&self.carry);
        data.extend_from_slice(block);
        self.carry.clear();
        let cut = last_boundary(&data, self.quote);
        if cut == 0 {
            if data.len() > self.max_record {
                return Err(SplitError::RecordTooLong(self.max_record));
            }
            self.carry.extend_from_slice(&data);
            self.buffers.give(data);
            return Ok(None);
        }
        self.carry.extend_from_slice(&data[cut..]);
        data.truncate(cut);
        Ok(Some(data))
    }

    /// The rest of the stream (a last record without a newline), at its end.
    pub fn finish(&mut self) -> Result<Option<Vec<u8>>, SplitError> {
        let rest = std::mem::take(&mut self.carry);
        if rest.is_empty() {
            return Ok(None);
        }
        if count(&rest, self.quote) % 2 == 1 {
            return Err(SplitError::UnterminatedQuote);
        }
        Ok(Some(rest))
    }
}

fn count(data: &[u8], byte: u8) -> usize {
    memchr::memchr_iter(byte, data).count()
}

/// Index just after the last newline outside quotes, or 0 if there is none.
pub fn last_boundary(data: &[u8], quote: u8) -> usize {
    let Some(mut end) = memchr::memrchr(b'\n', data) else {
        return 0;
    };
    let mut inside = count(&data[..end], quote) % 2 == 1;
    while inside {
        let Some(previous) = memchr::memrchr(b'\n', &data[..end]) else {
            return 0;
        };
        inside ^= count(&data[previous..end], quote) % 2 == 1;
        end = previous;
    }
    end + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut_all(data: &[u8], step: usize) -> Result<Vec<Vec<u8>>, SplitError> {
        let mut splitter = Splitter::new(b'"', 1 << 20, Buffers::new(2));
        let mut chunks = Vec::new();
        for block in data.chunks(step) {
            chunks.extend(splitter.push(block)?);
        }
        chunks.extend(splitter.finish()?);
        Ok(chunks)
    }

    const TRICKY: &[u8] = b"1,\"a\nb\",x\r\n2,\"\"\"q\"\"\nacross, lines\"\"\",y\n\n3,\"\",\"\"\"\"\n4,\"\n\n\",z\r\n5,\"end \"\"\",w";

    #[test]
    fn chunks_end_on_record_boundaries_however_the_reads_fall() {
        for step in 1..TRICKY.len() + 1 {
            let chunks = cut_all(TRICKY, step).unwrap();
            assert_eq!(chunks.concat(), TRICKY, "step {step}");
            for chunk in &chunks[..chunks.len() - 1] {
                assert_eq!(count(chunk, b'"') % 2, 0, "step {step}");
                assert_eq!(chunk.last(), Some(&b'\n'));
            }
        }
    }

    #[test]
    fn a_quote_never_closed_is_reported() {
        assert_eq!(
            cut_all(b"a\n\"b\nc\n", 2),
            Err(SplitError::UnterminatedQuote)
        );
        let mut splitter = Splitter::new(b'"', 8, Buffers::new(2));
        assert_eq!(
            splitter.push(b"\"abcdefgh\n"),
            Err(SplitError::RecordTooLong(8))
        );
    }

    fn cut_with(data: &[u8], step: usize, quote: u8) -> Vec<Vec<u8>> {
        let mut splitter = Splitter::new(quote, 1 << 20, Buffers::new(2));
        let mut chunks = Vec::new();
        for block in data.chunks(step) {
            chunks.extend(splitter.push(block).unwrap());
        }
        chunks.extend(splitter.finish().unwrap());
        chunks
    }

    #[test]
    fn one_byte_reads_give_one_record_per_chunk() {
        let chunks = cut_with(b"a,1\nb,\"x\ny\"\n\nc,3", 1, b'"');
        assert_eq!(chunks, vec![&b"a,1\n"[..], b"b,\"x\ny\"\n", b"\n", b"c,3"]);
        assert!(cut_with(b"", 10, b'"').is_empty());
    }

    #[test]
    fn a_record_longer_than_a_read_comes_whole_and_escaped_quotes_keep_the_parity() {
        let big = [&b"1,\""[..], &b"line\n".repeat(2000), b"\"\n"].concat();
        let data = [&b"0,x\n"[..], &big, b"2,y\n"].concat();
        let chunks = cut_with(&data, 100, b'"');
        assert_eq!(chunks[0], b"0,x\n");
        assert!(chunks[1].starts_with(&big));
        let quotes = cut_with(b"\"\"\"\n\"\"\n\"\"\"\nnext\n", 1, b'"');
        assert_eq!(quotes, vec![&b"\"\"\"\n\"\"\n\"\"\"\n"[..], b"next\n"]);
        let single = cut_with(b"1,'a\nb'\n2,c\n", 1, b'\'');
        assert_eq!(single, vec![&b"1,'a\nb'\n"[..], b"2,c\n"]);
    }
}
