//! The Parquet file being written: its properties (zstd, pages, statistics, page index), the
//! bytes written so far, and the open row group (native/src/groups.rs encodes it).

use std::io::Write;
use std::sync::{Arc, Mutex};

use arrow_array::ArrayRef;
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;

use crate::error::{Error, Result};
use crate::groups::{Encoders, Factories};

/// How the Parquet file is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub zstd_level: i32,
    /// A row group ends once it holds this many rows or input bytes.
    pub row_group_rows: usize,
    pub row_group_bytes: usize,
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            zstd_level: 3,
            row_group_rows: 1 << 20,
            row_group_bytes: 128 << 20,
        }
    }
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

/// Rows per data page at most. Pages otherwise end at 1 MiB of encoded values; but a dictionary
/// column's indices are held as 8-byte integers until its page ends, and a million indices of a
/// few bits fit in 1 MiB: 8 MiB per column per row group. 131,072 rows bound that to 1 MiB.
const PAGE_ROWS: usize = 1 << 17;

fn writer_properties(level: i32, dictionary: bool) -> Result<WriterProperties> {
    let level = ZstdLevel::try_new(level).map_err(|e| Error::Options(e.to_string()))?;
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

/// Every column a string (text mode).
pub fn text_schema(header: &[String]) -> SchemaRef {
    Arc::new(Schema::new(
        header
            .iter()
            .map(|name| Field::new(name, DataType::LargeUtf8, true))
            .collect::<Vec<_>>(),
    ))
}

pub struct ParquetFile {
    writer: SerializedFileWriter<SharedBuffer>,
    buffer: SharedBuffer,
    encoders: Encoders,
    layout: Layout,
    /// Rows and input bytes of the row group being encoded.
    rows: usize,
    bytes: usize,
}

impl ParquetFile {
    /// A file of this schema; `threads` encoders share its columns.
    pub fn new(schema: SchemaRef, layout: Layout, threads: usize) -> Result<Self> {
        let buffer = SharedBuffer::default();
        let props = writer_properties(layout.zstd_level, true)?;
        let writer = ArrowWriter::try_new(buffer.clone(), Arc::clone(&schema), Some(props))
            .map_err(Error::content)?;
        let (writer, dictionary) = writer.into_serialized_writer().map_err(Error::content)?;
        // Only its factory is used: column chunks encoded without a dictionary, appended to the
        // real file's row groups like the others.
        let props = writer_properties(layout.zstd_level, false)?;
        let unused = ArrowWriter::try_new(std::io::sink(), Arc::clone(&schema), Some(props))
            .map_err(Error::content)?;
        let (_, plain) = unused.into_serialized_writer().map_err(Error::content)?;
        let factories = Arc::new(Factories { dictionary, plain });
        Ok(ParquetFile {
            writer,
            buffer,
            encoders: Encoders::new(schema, factories, threads),
            layout,
            rows: 0,
            bytes: 0,
        })
    }

    /// Appends a chunk's arrays (`bytes` of input) to the open row group; the group's bytes if
    /// that filled it.
    pub fn write(
        &mut self,
        arrays: Vec<ArrayRef>,
        rows: usize,
        bytes: usize,
    ) -> Result<Option<Vec<u8>>> {
        if rows == 0 {
            return Ok(None);
        }
        self.encoders.write(arrays)?;
        self.rows += rows;
        self.bytes += bytes;
        if self.rows >= self.layout.row_group_rows || self.bytes >= self.layout.row_group_bytes {
            self.close_group()
        } else {
            Ok(None)
        }
    }

    /// Closes the row group being encoded (if it has rows): its bytes in the file.
    fn close_group(&mut self) -> Result<Option<Vec<u8>>> {
        if self.rows == 0 {
            return Ok(None);
        }
        let chunks = self.encoders.close()?;
        self.rows = 0;
        self.bytes = 0;
        let mut group = self.writer.next_row_group().map_err(Error::content)?;
        for chunk in chunks {
            chunk
                .append_to_row_group(&mut group)
                .map_err(Error::content)?;
        }
        group.close().map_err(Error::content)?;
        self.writer.flush().map_err(Error::content)?;
        Ok(Some(self.buffer.take()))
    }

    /// The last row group and the footer.
    pub fn close(mut self) -> Result<Vec<u8>> {
        let last = self.close_group()?.unwrap_or_default();
        self.writer.close().map_err(Error::content)?;
        Ok([last, self.buffer.take()].concat())
    }
}
