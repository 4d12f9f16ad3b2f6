//! The Python module `chute_native`.

use std::collections::HashSet;
use std::ffi::{c_int, c_void};
use std::sync::{Arc, Mutex};

use pyo3::buffer::PyBuffer;
use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use crate::buffers::Buffers;

use crate::contract::{self, Allowed, Policy};
use crate::convert::{self, Outputs, Typing};
use crate::error::{Error, Violation};
use crate::parquet_file;
use crate::types::Kind;

create_exception!(
    chute_native,
    BadContent,
    PyValueError,
    "The content can't be converted (the message names the row)."
);

create_exception!(
    chute_native,
    ContractFailed,
    PyValueError,
    "The data contract rejects the file: args are (problem_count, bad_rows, problems, detail)."
);

type PyProblem = (usize, String, String, String);

fn problems(violation: &Violation) -> Vec<PyProblem> {
    let problem = |p: &crate::error::Problem| {
        (
            p.row,
            p.column.clone(),
            p.value.clone(),
            p.reason.to_string(),
        )
    };
    violation.problems.iter().map(problem).collect()
}

fn to_py_err(error: Error) -> PyErr {
    match error {
        Error::Contract(v) => {
            ContractFailed::new_err((v.problem_count, v.bad_rows, problems(&v), v.detail))
        }
        Error::Options(detail) => PyValueError::new_err(detail),
        other => BadContent::new_err(other.to_string()),
    }
}

fn byte_of(name: &str, value: &str) -> PyResult<u8> {
    match value.as_bytes() {
        [byte] => Ok(*byte),
        _ => Err(PyValueError::new_err(format!(
            "the {name} must be one ASCII character other than CR and LF, not {value:?}"
        ))),
    }
}

/// How the records are written.
#[pyclass(module = "chute_native", frozen)]
struct Dialect(convert::Dialect);

#[pymethods]
impl Dialect {
    #[new]
    #[pyo3(signature = (delimiter, quote, max_record))]
    fn new(delimiter: &str, quote: &str, max_record: usize) -> PyResult<Self> {
        let (delimiter, quote) = (byte_of("delimiter", delimiter)?, byte_of("quote", quote)?);
        let dialect = convert::Dialect::new(delimiter, quote, max_record).map_err(to_py_err)?;
        Ok(Dialect(dialect))
    }
}

/// How the Parquet file is laid out.
#[pyclass(module = "chute_native", frozen)]
struct Layout(parquet_file::Layout);

#[pymethods]
impl Layout {
    #[new]
    #[pyo3(signature = (zstd_level=3, row_group_rows=1 << 20, row_group_bytes=128 << 20))]
    fn new(zstd_level: i32, row_group_rows: usize, row_group_bytes: usize) -> Self {
        Layout(parquet_file::Layout {
            zstd_level,
            row_group_rows: row_group_rows.max(1),
            row_group_bytes: row_group_bytes.max(1),
        })
    }
}

fn kind(name: &str) -> PyResult<Kind> {
    Kind::from_name(name).ok_or_else(|| PyValueError::new_err(format!("no type {name:?}")))
}

/// (name, type, file column or None, checked, nullable, pattern, allowed strings, allowed ints)
type PyColumn = (
    String,
    String,
    Option<usize>,
    bool,
    bool,
    Option<String>,
    Option<Vec<String>>,
    Option<Vec<i64>>,
);

/// A data contract planned on a file's header (tasks/data_contracts/check.py builds it).
#[pyclass(module = "chute_native", frozen)]
struct Contract(Arc<contract::Contract>);

#[pymethods]
impl Contract {
    #[new]
    #[pyo3(signature = (columns, nulls, *, policy, max_rejected_rows, report_limit))]
    fn new(
        columns: Vec<PyColumn>,
        nulls: Vec<String>,
        policy: &str,
        max_rejected_rows: usize,
        report_limit: usize,
    ) -> PyResult<Self> {
        let column = |spec: PyColumn| -> PyResult<contract::Column> {
            let (name, type_name, source, checked, nullable, pattern, strings, ints) = spec;
            let pattern = pattern.map(|p| contract::compile_pattern(&p)).transpose();
            let allowed = match (strings, ints) {
                (Some(s), _) => Some(Allowed::Strings(
                    s.into_iter().map(String::into_bytes).collect(),
                )),
                (_, Some(i)) => Some(Allowed::Ints(i.into_iter().collect::<HashSet<_>>())),
                _ => None,
            };
            Ok(contract::Column {
                name,
                kind: kind(&type_name)?,
                source,
                checked,
                nullable,
                pattern: pattern.map_err(to_py_err)?,
                allowed,
            })
        };
        let policy = match policy {
            "reject" => Policy::Reject,
            "drop_rows" => Policy::DropRows { max_rejected_rows },
            other => return Err(PyValueError::new_err(format!("no policy {other:?}"))),
        };
        Ok(Contract(Arc::new(contract::Contract {
            columns: columns.into_iter().map(column).collect::<PyResult<_>>()?,
            nulls: nulls.into_iter().map(String::into_bytes).collect(),
            policy,
            report_limit,
        })))
    }
}

/// Why `pattern` can't be a contract's (Rust's regex syntax, anchored), or None.
#[pyfunction]
fn pattern_error(pattern: &str) -> Option<String> {
    contract::compile_pattern(pattern)
        .err()
        .map(|e| e.to_string())
}

/// One conversion: feed it the decompressed stream block by block, then finish it.
#[pyclass(module = "chute_native")]
struct Converter {
    inner: Mutex<convert::Converter>,
    /// Where the JSON Lines buffers handed to Python go back (the converter's).
    outputs: Buffers,
}

type PyChunks<'py> = Bound<'py, PyList>;

/// Output bytes handed to Python without a copy (the buffer protocol: a sink writes them as
/// it would `bytes`); once Python lets go, the buffer goes back to the converter for a later
/// chunk (native/src/buffers.rs).
#[pyclass(module = "chute_native", frozen)]
struct Output {
    data: Vec<u8>,
    home: Buffers,
}

#[pymethods]
impl Output {
    /// # Safety
    /// `view` is the Py_buffer Python asks to fill; the bytes stay put while the view holds
    /// this object (PyBuffer_FillInfo takes a reference to it).
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let data = &slf.get().data;
        // Safety: a read-only view of `data`, owned by `slf`, which the view keeps alive.
        let filled = unsafe {
            ffi::PyBuffer_FillInfo(
                view,
                slf.as_ptr(),
                data.as_ptr() as *mut c_void,
                data.len() as ffi::Py_ssize_t,
                1,
                flags,
            )
        };
        match filled {
            0 => Ok(()),
            _ => Err(PyErr::fetch(slf.py())),
        }
    }

    fn __len__(&self) -> usize {
        self.data.len()
    }

    fn __bytes__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.data)
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        self.home.give(std::mem::take(&mut self.data));
    }
}

fn to_python<'py>(
    py: Python<'py>,
    chunks: Vec<convert::Chunk>,
    home: &Buffers,
) -> PyResult<PyChunks<'py>> {
    let list = PyList::empty(py);
    for chunk in chunks {
        let bytes = |data: Option<Vec<u8>>| data.map(|d| PyBytes::new(py, &d));
        let jsonl = chunk.jsonl.map(|data| Output {
            data,
            home: home.clone(),
        });
        let item = PyTuple::new(
            py,
            [
                chunk.rows.into_pyobject(py)?.into_any(),
                jsonl.into_pyobject(py)?.into_any(),
                bytes(chunk.parquet).into_pyobject(py)?.into_any(),
                chunk.rejected_rows.into_pyobject(py)?.into_any(),
                bytes(chunk.rejected).into_pyobject(py)?.into_any(),
            ],
        )?;
        list.append(item)?;
    }
    Ok(list)
}

fn typing(value: &Bound<'_, PyAny>) -> PyResult<Typing> {
    if value.is_none() {
        return Ok(Typing::Text);
    }
    if let Ok(contract) = value.cast::<Contract>() {
        return Ok(Typing::Contract(Arc::clone(&contract.get().0)));
    }
    if let Ok(word) = value.extract::<String>() {
        return match word.as_str() {
            "infer" => Ok(Typing::Infer),
            _ => Err(PyValueError::new_err(format!("no typing {word:?}"))),
        };
    }
    let names: Vec<String> = value.extract()?;
    Ok(Typing::Fixed(
        names.iter().map(|n| kind(n)).collect::<PyResult<_>>()?,
    ))
}

#[pymethods]
impl Converter {
    #[new]
    #[pyo3(signature = (header, dialect, outputs, typing, *, workers, layout))]
    fn new(
        header: Vec<String>,
        dialect: &Dialect,
        outputs: Vec<String>,
        typing: &Bound<'_, PyAny>,
        workers: usize,
        layout: &Layout,
    ) -> PyResult<Self> {
        if let Some(other) = outputs.iter().find(|o| *o != "jsonl" && *o != "parquet") {
            return Err(PyValueError::new_err(format!("no output format {other:?}")));
        }
        let has = |name: &str| outputs.iter().any(|o| o == name);
        let config = convert::Config {
            header,
            dialect: dialect.0,
            outputs: Outputs::new(has("jsonl"), has("parquet")),
            typing: self::typing(typing)?,
            workers: workers.max(1),
            layout: layout.0,
        };
        let inner = convert::Converter::new(config).map_err(to_py_err)?;
        Ok(Converter {
            outputs: inner.outputs().clone(),
            inner: Mutex::new(inner),
        })
    }

    /// The chunks that `block` completed, as (rows, jsonl, parquet, rejected rows, rejected)
    /// tuples, and the error to raise once they are written, if any.
    fn feed<'py>(
        &self,
        py: Python<'py>,
        block: PyBuffer<u8>,
    ) -> PyResult<(PyChunks<'py>, Option<PyErr>)> {
        if !block.is_c_contiguous() {
            return Err(PyValueError::new_err("a block must be contiguous bytes"));
        }
        // Safety: a contiguous buffer of `len_bytes` bytes, held (not released) for this call;
        // the caller doesn't write to it until feed returns (engine.py reads the next block
        // into it only then), and feed copies what it keeps.
        let bytes =
            unsafe { std::slice::from_raw_parts(block.buf_ptr() as *const u8, block.len_bytes()) };
        let (chunks, error) = py.detach(|| self.inner.lock().unwrap().feed(bytes));
        Ok((to_python(py, chunks, &self.outputs)?, error.map(to_py_err)))
    }

    /// The last chunks, the error if any, and the Parquet file's last bytes (its footer).
    fn finish<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(PyChunks<'py>, Option<PyErr>, Bound<'py, PyBytes>)> {
        let (chunks, error, tail) = py.detach(|| self.inner.lock().unwrap().finish());
        Ok((
            to_python(py, chunks, &self.outputs)?,
            error.map(to_py_err),
            PyBytes::new(py, &tail),
        ))
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

    /// A contract's findings: (problem count, bad rows, the first problems).
    fn violation(&self) -> (usize, usize, Vec<PyProblem>) {
        let inner = self.inner.lock().unwrap();
        let violation = inner.violation();
        (
            violation.problem_count,
            violation.bad_rows,
            problems(violation),
        )
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
    m.add_class::<Output>()?;
    m.add_class::<Dialect>()?;
    m.add_class::<Layout>()?;
    m.add_class::<Contract>()?;
    m.add_function(wrap_pyfunction!(pattern_error, m)?)?;
    m.add_function(wrap_pyfunction!(kind_of, m)?)?;
    m.add("BadContent", m.py().get_type::<BadContent>())?;
    m.add("ContractFailed", m.py().get_type::<ContractFailed>())?;
    let markers: Vec<String> = crate::types::NULL_MARKERS
        .iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .collect();
    m.add("NULL_MARKERS", markers)?;
    Ok(())
}
