"""A data contract over a fanned-out file: its error policy decided once, for the whole file.

Each part ran with every bad row dropped and counted (tasks.fanout.part). The commit adds the
parts up in file order — row numbers made file-global (the records of the parts before added),
the first ``report_limit`` problems kept — and applies the contract's policy: "reject" fails
the file on any problem, "drop_rows" once more than ``max_rejected_rows`` rows were dropped,
with the message a single worker writes (tasks.data_contracts.model.violation_message). A
single worker stops at the chunk (4 MiB) where the policy fails, so its counts are the file's up
to that chunk; a fanned-out file's are the whole file's (the same when it fails in its last
chunk: in particular, any file of one chunk).

The rows a file keeps are joined like any output; its rejected rows (every file column as
written, then ``_row`` and ``_errors``) are rewritten with file-global ``_row`` numbers. Pure:
the caller reads and writes the bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from tasks.data_contracts.model import Contract, Problem, violation_message
from tasks.errors import ContractViolation

ROW_KEY = b'"_row":'
"""In a rejected row, the row number's key: it occurs once (keys and values are JSON strings,
whose quotes are escaped; ``_row`` is a reserved column name)."""
READ_BYTES = 8 * 1024 * 1024


def records(found: dict[str, Any]) -> int:
    """The data records a part read: the rows it kept and the rows it rejected."""
    rejected = found.get("rejected") or {}
    return int(found["rows"]) + int(rejected.get("rows", 0))


def check(contract: Contract, found: Iterable[dict[str, Any]]) -> None:
    """ContractViolation when the parts' problems, added up, break the contract's policy."""
    problems: list[Problem] = []
    count = bad = before = 0
    for part in found:
        problems += [
            Problem(int(p["row"]) + before, str(p["column"]), str(p["value"]), str(p["reason"]))
            for p in part.get("problems") or []
        ]
        count += int(part.get("problemCount", 0))
        bad += int((part.get("rejected") or {}).get("rows", 0))
        before += records(part)
    on_error = contract.on_error
    listed = problems[: on_error.report_limit]
    if on_error.policy == "reject" and count:
        raise ContractViolation(violation_message(contract.name, listed, count, bad))
    if on_error.policy == "drop_rows" and bad > on_error.max_rejected_rows:
        detail = f"more than max_rejected_rows={on_error.max_rejected_rows} rows rejected"
        message = violation_message(contract.name, listed, count, bad, detail=detail)
        raise ContractViolation(message)


def rebased(lines: bytes, rows_before: int) -> bytes:
    """Whole rejected rows (JSON Lines) with ``rows_before`` added to each ``_row``."""
    out = []
    for line in lines.split(b"\n")[:-1]:
        at = line.index(ROW_KEY) + len(ROW_KEY)
        end = at
        while line[end : end + 1].isdigit():
            end += 1
        out.append(line[:at] + str(int(line[at:end]) + rows_before).encode() + line[end:] + b"\n")
    return b"".join(out)


Read = Callable[[str, int, int], bytes]
"""``read(key, start, end)``: bytes ``[start, end)`` of the part object ``key``."""


def join_rejected(
    parts: Iterable[tuple[str, int, int]], read: Read, write: Callable[[bytes], None]
) -> None:
    """The parts' rejected rows, in order, rebased: ``parts`` are (key, size, rows before)."""
    for key, size, rows_before in parts:
        carry = b""
        for start in range(0, size, READ_BYTES):
            data = carry + read(key, start, min(size, start + READ_BYTES))
            whole = data.rfind(b"\n") + 1
            write(rebased(data[:whole], rows_before))
            carry = data[whole:]
        if carry:
            raise ValueError(f"{key}: its rejected rows end without a newline")
