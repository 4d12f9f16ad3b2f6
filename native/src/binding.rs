//! The Python module `chute_native`.

use crate::convert;
use crate::types::Kind;
use pyo3::create_exception;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

create_exception!(
    chute_native,
    BadContent,
    PyValueError,
    "The content can't be converted (the message names the row)."
);

/// One conversion: feed it the decompressed stream block by block, then finish it.
#[pyclass(module = "chute_native")]
struct Converter {
    inner: std::sync::Mutex<convert::Converter>,
}

fn byte_of(name: &str, value: &str) -> PyResult<u8> {
    match value.as_bytes() {
        [byte] if byte.is_ascii() && *byte != b'\n' && *byte != b'\r' => Ok(*byte),
        _ => Err(PyValueError::new_err(format!(
            "the {name} must be one ASCII character other than CR and LF, not {value:?}"
        ))),
    }
}

type PyChunks<'py> = Bound<'py, PyList>;

fn to_python<'py>(py: Python<'py>, chunks: Vec<convert::Chunk>) -> PyResult<PyChunks<'py>> {
    let list = PyList::empty(py);
    for chunk in chunks {
        let bytes = |data: Option<Vec<u8>>| data.map(|d| PyBytes::new(py, &d));
        let columns = match chunk.columns {
            Some(columns) => {
                let out = PyList::empty(py);
                for column in columns {
                    let offsets: Vec<u8> = column
                        .offsets
                        .iter()
                        .flat_map(|o| o.to_le_bytes())
                        .collect();
                    out.append((PyBytes::new(py, &offsets), PyBytes::new(py, &column.values)))?;
                }
                Some(out)
            }
            None => None,
        };
        let item = PyTuple::new(
            py,
            [
                chunk.rows.into_pyobject(py)?.into_any(),
                bytes(chunk.jsonl).into_pyobject(py)?.into_any(),
                bytes(chunk.parquet).into_pyobject(py)?.into_any(),
                columns.into_pyobject(py)?.into_any(),
            ],
        )?;
        list.append(item)?;
    }
    Ok(list)
}

fn raise_after<'py>(
    chunks: PyChunks<'py>,
    error: Option<String>,
) -> PyResult<(PyChunks<'py>, Option<PyErr>)> {
    Ok((chunks, error.map(BadContent::new_err)))
}

#[pymethods]
impl Converter {
    #[new]
    #[pyo3(signature = (header, delimiter, quote, *, jsonl, parquet, columns, workers, max_record, zstd_level, infer=false, types=None, row_group_rows=1 << 20, row_group_bytes=128 << 20))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        header: Vec<String>,
        delimiter: &str,
        quote: &str,
        jsonl: bool,
        parquet: bool,
        columns: bool,
        workers: usize,
        max_record: usize,
        zstd_level: i32,
        infer: bool,
        types: Option<Vec<String>>,
        row_group_rows: usize,
        row_group_bytes: usize,
    ) -> PyResult<Self> {
        let typing = match (infer, types) {
            (false, None) => convert::Typing::Text,
            (true, None) => convert::Typing::Infer,
            (false, Some(names)) => convert::Typing::Fixed(
                names
                    .iter()
                    .map(|name| {
                        Kind::from_name(name)
                            .ok_or_else(|| PyValueError::new_err(format!("no type {name:?}")))
                    })
                    .collect::<PyResult<_>>()?,
            ),
            (true, Some(_)) => {
                return Err(PyValueError::new_err(
                    "infer and types are exclusive: types are inferred or given",
                ))
            }
        };
        let config = convert::Config {
            typing,
            row_group_rows: row_group_rows.max(1),
            row_group_bytes: row_group_bytes.max(1),
            delimiter: byte_of("delimiter", delimiter)?,
            quote: byte_of("quote", quote)?,
            header,
            jsonl,
            parquet,
            columns,
            workers: workers.max(1),
            max_record: max_record.max(1),
            zstd_level,
        };
        if config.delimiter == config.quote {
            return Err(PyValueError::new_err(
                "the delimiter and the quote must differ",
            ));
        }
        let inner = convert::Converter::new(config).map_err(PyRuntimeError::new_err)?;
        Ok(Converter {
            inner: std::sync::Mutex::new(inner),
        })
    }

    /// The chunks that `block` completed, as (rows, jsonl, parquet, columns) tuples, and the
    /// error (BadContent) to raise once they are written, if any.
    fn feed<'py>(&self, py: Python<'py>, block: &[u8]) -> PyResult<(PyChunks<'py>, Option<PyErr>)> {
        let (chunks, error) = py.detach(|| self.inner.lock().unwrap().feed(block));
        raise_after(to_python(py, chunks)?, error)
    }

    /// The last chunks, the error if any, and the Parquet file's last bytes (its footer).
    fn finish<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(PyChunks<'py>, Option<PyErr>, Bound<'py, PyBytes>)> {
        let (chunks, error, tail) = py.detach(|| self.inner.lock().unwrap().finish());
        let (chunks, error) = raise_after(to_python(py, chunks)?, error)?;
        Ok((chunks, error, PyBytes::new(py, &tail)))
    }

    /// Typed mode: each column's type, that every value read so far fits (after `finish`: the
    /// whole file's); None in text mode.
    fn schema(&self) -> Option<Vec<&'static str>> {
        let inner = self.inner.lock().unwrap();
        inner
            .kinds()
            .map(|kinds| kinds.iter().map(|kind| kind.name()).collect())
    }

    /// Typed mode: each column's mask of the types every value read fits; parts of one file
    /// AND their masks into the whole file's (`kind_of`).
    fn masks(&self) -> Option<Vec<u8>> {
        self.inner.lock().unwrap().masks().map(<[u8]>::to_vec)
    }

    /// Whether the output was given up because a column had to be widened: convert again
    /// with `types=schema()`.
    fn restart(&self) -> bool {
        self.inner.lock().unwrap().restart()
    }

    /// The columns widened: (column index, type before, type after, row, first value that
    /// didn't fit).
    fn widenings(&self) -> Vec<(usize, &'static str, &'static str, usize, String)> {
        let inner = self.inner.lock().unwrap();
        inner
            .widenings()
            .into_iter()
            .map(|w| (w.column, w.from.name(), w.to.name(), w.row, w.value))
            .collect()
    }
}

/// Chunks (4 MiB) and their outputs come from glibc's heaps, which keep up to 16 MiB free at
/// their top, and only blocks of 64 MiB and more are mapped: mapping and unmapping every chunk's
/// buffers cost a page fault per 4 KiB (355k faults, 0.9 s of kernel time for 300 MB to typed
/// Parquet; 108k, 0.3 s so). A fixed threshold also keeps glibc's dynamic one from moving up.
/// 32 MiB kept free saved a few more faults for ~40 MiB more RSS (bench/results.md).
fn bound_large_allocations() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // Safety: mallopt only sets a malloc tunable; called once, at import.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 16 << 20);
    }
}

/// The type of a column whose values fit `mask` (`Converter.masks`); None when it held null
/// markers only (written as text, but any type fits it).
#[pyfunction]
fn kind_of(mask: u8) -> Option<&'static str> {
    match Kind::of(mask) {
        Kind::Unknown => None,
        kind => Some(kind.name()),
    }
}

#[pymodule]
fn chute_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    bound_large_allocations();
    m.add_class::<Converter>()?;
    m.add_function(wrap_pyfunction!(kind_of, m)?)?;
    m.add("BadContent", m.py().get_type::<BadContent>())?;
    let markers: Vec<String> = crate::types::NULL_MARKERS
        .iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .collect();
    m.add("NULL_MARKERS", markers)?;
    Ok(())
}
