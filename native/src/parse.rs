//! Parses one chunk of whole records exactly as Python's `csv.reader(strict=True)` reads it
//! (lines end at LF; a CR outside quotes must be followed by the line's end), checks that
//! every record has the header's width and is valid UTF-8, and names the record at fault.
//!
//! Records are counted without blank lines; a line holding `""` is one empty field.

/// A record that can't be converted: its index within the chunk, and why.
#[derive(Debug, PartialEq, Eq)]
pub struct RowError {
    pub index: usize,
    pub message: String,
}

#[derive(Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    scratch: bool,
}

/// One record's fields, valid UTF-8.
pub struct Record<'a> {
    data: &'a [u8],
    scratch: &'a [u8],
    spans: &'a [Span],
}

impl<'a> Record<'a> {
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    pub fn field(&self, i: usize) -> &'a [u8] {
        let span = self.spans[i];
        let source = if span.scratch {
            self.scratch
        } else {
            self.data
        };
        &source[span.start..span.end]
    }
}

/// Receives the records of a chunk in order.
pub trait RecordSink {
    fn record(&mut self, record: &Record<'_>);
}

const CR_OUTSIDE_QUOTES: &str = "cannot parse: a carriage return (CR) outside quotes";

/// Where the line ends after a CR at `at` outside quotes (only more CRs may come before the
/// LF or the end of the data).
fn eat_crnl(data: &[u8], at: usize) -> Option<usize> {
    let mut pos = at;
    while pos < data.len() && data[pos] == b'\r' {
        pos += 1;
    }
    if pos == data.len() {
        Some(pos)
    } else if data[pos] == b'\n' {
        Some(pos + 1)
    } else {
        None
    }
}

/// Parses `data` into records of `width` fields, each handed to `sink`; the number of records.
pub fn parse(
    data: &[u8],
    delimiter: u8,
    quote: u8,
    width: usize,
    sink: &mut impl RecordSink,
) -> Result<usize, RowError> {
    let check_utf8 = simdutf8::basic::from_utf8(data).is_err();
    let n = data.len();
    let mut pos = 0;
    let mut rows = 0;
    let mut spans: Vec<Span> = Vec::with_capacity(width);
    let mut scratch: Vec<u8> = Vec::new();
    let fail = |rows: usize, message: String| RowError {
        index: rows,
        message,
    };
    while pos < n {
        match data[pos] {
            b'\n' => {
                pos += 1; // a blank line
                continue;
            }
            b'\r' => {
                pos = eat_crnl(data, pos).ok_or_else(|| fail(rows, CR_OUTSIDE_QUOTES.into()))?;
                continue; // a blank line (CRLF)
            }
            _ => {}
        }
        spans.clear();
        scratch.clear();
        loop {
            // the start of a field
            if pos < n && data[pos] == quote {
                let opened = pos + 1;
                let mut start = opened;
                let mut escaped = false;
                let scratch_start = scratch.len();
                loop {
                    let Some(found) = memchr::memchr(quote, &data[start..]) else {
                        return Err(fail(rows, "cannot parse: unexpected end of data".into()));
                    };
                    let q = start + found;
                    if q + 1 < n && data[q + 1] == quote {
                        escaped = true; // "" stands for one quote
                        scratch.extend_from_slice(&data[start..=q]);
                        start = q + 2;
                        continue;
                    }
                    spans.push(if escaped {
                        scratch.extend_from_slice(&data[start..q]);
                        Span {
                            start: scratch_start,
                            end: scratch.len(),
                            scratch: true,
                        }
                    } else {
                        Span {
                            start: opened,
                            end: q,
                            scratch: false,
                        }
                    });
                    pos = q + 1;
                    break;
                }
                if pos >= n {
                    break;
                }
                let c = data[pos];
                if c == delimiter {
                    pos += 1;
                } else if c == b'\n' {
                    pos += 1;
                    break;
                } else if c == b'\r' {
                    pos =
                        eat_crnl(data, pos).ok_or_else(|| fail(rows, CR_OUTSIDE_QUOTES.into()))?;
                    break;
                } else {
                    return Err(fail(
                        rows,
                        format!(
                            "cannot parse: '{}' expected after '{}'",
                            delimiter as char, quote as char
                        ),
                    ));
                }
            } else {
                match memchr::memchr3(delimiter, b'\n', b'\r', &data[pos..]) {
                    None => {
                        spans.push(Span {
                            start: pos,
                            end: n,
                            scratch: false,
                        });
                        pos = n;
                        break;
                    }
                    Some(found) => {
                        let end = pos + found;
                        spans.push(Span {
                            start: pos,
                            end,
                            scratch: false,
                        });
                        let c = data[end];
                        if c == delimiter {
                            pos = end + 1;
                        } else if c == b'\n' {
                            pos = end + 1;
                            break;
                        } else {
                            pos = eat_crnl(data, end)
                                .ok_or_else(|| fail(rows, CR_OUTSIDE_QUOTES.into()))?;
                            break;
                        }
                    }
                }
            }
        }
        if spans.len() != width {
            return Err(fail(
                rows,
                format!(
                    "expected {width} fields as in the header, found {}",
                    spans.len()
                ),
            ));
        }
        let record = Record {
            data,
            scratch: &scratch,
            spans: &spans,
        };
        if check_utf8 && (0..width).any(|i| std::str::from_utf8(record.field(i)).is_err()) {
            return Err(fail(rows, "not valid UTF-8".into()));
        }
        sink.record(&record);
        rows += 1;
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Collect(Vec<Vec<String>>);

    impl RecordSink for Collect {
        fn record(&mut self, record: &Record<'_>) {
            let fields = (0..record.len())
                .map(|i| String::from_utf8(record.field(i).to_vec()).unwrap())
                .collect();
            self.0.push(fields);
        }
    }

    fn rows(data: &[u8], width: usize) -> Result<Vec<Vec<String>>, RowError> {
        let mut sink = Collect(Vec::new());
        parse(data, b',', b'"', width, &mut sink)?;
        Ok(sink.0)
    }

    fn error(data: &[u8], width: usize) -> (usize, String) {
        let e = rows(data, width).unwrap_err();
        (e.index, e.message)
    }

    #[test]
    fn quoting_as_the_csv_module_reads_it() {
        let got = rows(b"a,\"b,\"\"c\"\"\nd\"\r\n\n\"\",x\"y\r\r\n1,2", 2).unwrap();
        assert_eq!(
            got,
            vec![
                vec!["a".to_string(), "b,\"c\"\nd".to_string()],
                vec!["".to_string(), "x\"y".to_string()],
                vec!["1".to_string(), "2".to_string()],
            ]
        );
        assert_eq!(rows(b"a,b,\n", 3).unwrap()[0][2], "");
        assert_eq!(rows(b"\"\"\n\n\"\"", 1).unwrap().len(), 2);
    }

    #[test]
    fn errors_name_the_record() {
        assert_eq!(
            error(b"a,b\n\nc\n", 2),
            (1, "expected 2 fields as in the header, found 1".into())
        );
        assert_eq!(
            error(b"a,b\n\"x\"y,b\n", 2),
            (1, "cannot parse: ',' expected after '\"'".into())
        );
        assert_eq!(error(b"a,b\rc\n", 2), (0, CR_OUTSIDE_QUOTES.into()));
        assert_eq!(error(b"a,b\n1,\xff\n", 2), (1, "not valid UTF-8".into()));
        assert_eq!(
            error(b"a,\"b\n", 2),
            (0, "cannot parse: unexpected end of data".into())
        );
        assert_eq!(
            error(b"a,\"b\"\"", 2),
            (0, "cannot parse: unexpected end of data".into())
        );
    }
}
