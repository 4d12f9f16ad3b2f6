//! Parses one chunk of whole records exactly as Python's `csv.reader(strict=True)` reads it
//! (lines end at LF; a CR outside quotes must be followed by the line's end), checks that
//! every record has the header's width and is valid UTF-8, and names the record at fault.
//!
//! Records are counted without blank lines; a line holding `""` is one empty field.

/// What is wrong with a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RowProblem {
    /// Not as many fields as the header has.
    Width {
        expected: usize,
        found: usize,
    },
    /// A CR outside quotes not followed by the line's end.
    CrOutsideQuotes,
    /// The data ends inside a quoted field.
    UnexpectedEnd,
    /// A closing quote followed by something else than a delimiter or the line's end.
    AfterQuote {
        delimiter: u8,
        quote: u8,
    },
    NotUtf8,
}

impl std::fmt::Display for RowProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RowProblem::Width { expected, found } => {
                write!(
                    f,
                    "expected {expected} fields as in the header, found {found}"
                )
            }
            RowProblem::CrOutsideQuotes => {
                f.write_str("cannot parse: a carriage return (CR) outside quotes")
            }
            RowProblem::UnexpectedEnd => f.write_str("cannot parse: unexpected end of data"),
            RowProblem::AfterQuote { delimiter, quote } => write!(
                f,
                "cannot parse: '{}' expected after '{}'",
                *delimiter as char, *quote as char
            ),
            RowProblem::NotUtf8 => f.write_str("not valid UTF-8"),
        }
    }
}

/// A record that can't be converted: its index within the chunk, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    pub index: usize,
    pub problem: RowProblem,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.problem.fmt(f)
    }
}

impl std::error::Error for RowError {}

#[derive(Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    scratch: bool,
}

impl Span {
    fn data(start: usize, end: usize) -> Span {
        Span {
            start,
            end,
            scratch: false,
        }
    }

    fn scratch(start: usize, end: usize) -> Span {
        Span {
            start,
            end,
            scratch: true,
        }
    }
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

/// What follows a field.
enum Next {
    Field,
    RecordEnd,
}

/// Reads records field by field.
struct Cursor<'a> {
    data: &'a [u8],
    delimiter: u8,
    quote: u8,
    pos: usize,
}

impl Cursor<'_> {
    /// Past blank lines (LF, CRLF); false at the end of the data.
    fn skip_blank_lines(&mut self) -> Result<bool, RowProblem> {
        while let Some(&byte) = self.data.get(self.pos) {
            match byte {
                b'\n' => self.pos += 1,
                b'\r' => {
                    self.pos = eat_crnl(self.data, self.pos).ok_or(RowProblem::CrOutsideQuotes)?
                }
                _ => return Ok(true),
            }
        }
        Ok(false)
    }

    /// One record's fields (spans of the data, or of `scratch` for unescaped quotes).
    fn record(&mut self, spans: &mut Vec<Span>, scratch: &mut Vec<u8>) -> Result<(), RowProblem> {
        spans.clear();
        scratch.clear();
        loop {
            let next = if self.data.get(self.pos) == Some(&self.quote) {
                self.quoted(spans, scratch)?
            } else {
                self.plain(spans)?
            };
            if let Next::RecordEnd = next {
                return Ok(());
            }
        }
    }

    /// A quoted field: `""` stands for one quote (the field is then copied to `scratch`).
    fn quoted(&mut self, spans: &mut Vec<Span>, scratch: &mut Vec<u8>) -> Result<Next, RowProblem> {
        let (data, quote) = (self.data, self.quote);
        let opened = self.pos + 1;
        let mut start = opened;
        let scratch_start = scratch.len();
        let mut escaped = false;
        loop {
            let found = memchr::memchr(quote, &data[start..]).ok_or(RowProblem::UnexpectedEnd)?;
            let q = start + found;
            if data.get(q + 1) == Some(&quote) {
                escaped = true;
                scratch.extend_from_slice(&data[start..=q]);
                start = q + 2;
                continue;
            }
            spans.push(if escaped {
                scratch.extend_from_slice(&data[start..q]);
                Span::scratch(scratch_start, scratch.len())
            } else {
                Span::data(opened, q)
            });
            self.pos = q + 1;
            return self.after_quote();
        }
    }

    /// After a closing quote: a delimiter, the line's end or the data's end.
    fn after_quote(&mut self) -> Result<Next, RowProblem> {
        match self.data.get(self.pos) {
            None => Ok(Next::RecordEnd),
            Some(&c) if c == self.delimiter => {
                self.pos += 1;
                Ok(Next::Field)
            }
            Some(b'\n' | b'\r') => self.line_end(self.pos),
            Some(_) => Err(RowProblem::AfterQuote {
                delimiter: self.delimiter,
                quote: self.quote,
            }),
        }
    }

    /// An unquoted field, up to a delimiter, the line's end or the data's end.
    fn plain(&mut self, spans: &mut Vec<Span>) -> Result<Next, RowProblem> {
        let rest = &self.data[self.pos..];
        let Some(found) = memchr::memchr3(self.delimiter, b'\n', b'\r', rest) else {
            spans.push(Span::data(self.pos, self.data.len()));
            self.pos = self.data.len();
            return Ok(Next::RecordEnd);
        };
        let end = self.pos + found;
        spans.push(Span::data(self.pos, end));
        if self.data[end] == self.delimiter {
            self.pos = end + 1;
            Ok(Next::Field)
        } else {
            self.line_end(end)
        }
    }

    /// A line ending at `at` (LF, or CRs then LF or the data's end).
    fn line_end(&mut self, at: usize) -> Result<Next, RowProblem> {
        self.pos = if self.data[at] == b'\n' {
            at + 1
        } else {
            eat_crnl(self.data, at).ok_or(RowProblem::CrOutsideQuotes)?
        };
        Ok(Next::RecordEnd)
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
    let mut cursor = Cursor {
        data,
        delimiter,
        quote,
        pos: 0,
    };
    let mut spans: Vec<Span> = Vec::with_capacity(width);
    let mut scratch: Vec<u8> = Vec::new();
    let mut rows = 0;
    let fail = |index: usize| move |problem: RowProblem| RowError { index, problem };
    while cursor.skip_blank_lines().map_err(fail(rows))? {
        cursor
            .record(&mut spans, &mut scratch)
            .map_err(fail(rows))?;
        if spans.len() != width {
            let found = spans.len();
            return Err(fail(rows)(RowProblem::Width {
                expected: width,
                found,
            }));
        }
        let record = Record {
            data,
            scratch: &scratch,
            spans: &spans,
        };
        if check_utf8 && (0..width).any(|i| std::str::from_utf8(record.field(i)).is_err()) {
            return Err(fail(rows)(RowProblem::NotUtf8));
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
        (e.index, e.to_string())
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
        assert_eq!(
            error(b"a,b\rc\n", 2),
            (0, RowProblem::CrOutsideQuotes.to_string())
        );
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

    #[test]
    fn fields_end_at_delimiters_line_ends_and_the_data_end() {
        // a trailing delimiter makes an empty last field; CRLF and CR CR LF end lines
        assert_eq!(rows(b"a,\r\nb,c\r\r\n", 2).unwrap()[0], vec!["a", ""]);
        assert_eq!(
            rows(b"\"a\"\r\n\"b\"", 1).unwrap(),
            vec![vec!["a"], vec!["b"]]
        );
        // quotes inside an unquoted field are data
        assert_eq!(rows(b"a\"b,c", 2).unwrap()[0], vec!["a\"b", "c"]);
        // escaped quotes at the start, the end and alone
        assert_eq!(
            rows(b"\"\"\"x\"\"\",\"\"\"\"", 2).unwrap()[0],
            vec!["\"x\"", "\""]
        );
        // blank lines before a record are not records; a CR alone is an error
        assert_eq!(rows(b"\r\n\n\r\na", 1).unwrap(), vec![vec!["a"]]);
        assert_eq!(
            error(b"\ra", 1),
            (0, RowProblem::CrOutsideQuotes.to_string())
        );
    }

    #[test]
    fn errors_are_typed() {
        let e = rows(b"a,b,c\n", 2).unwrap_err();
        assert_eq!(
            e.problem,
            RowProblem::Width {
                expected: 2,
                found: 3
            }
        );
        let e = rows(b"\"a\"x", 1).unwrap_err();
        assert_eq!(
            e.problem,
            RowProblem::AfterQuote {
                delimiter: b',',
                quote: b'"'
            }
        );
    }
}
