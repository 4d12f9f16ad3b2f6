"""`chute upload`'s multipart upload: verified parts, and resume after an interruption."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from chute.ops.upload import UploadInterrupted, upload_file
from tasks.s3_limits import MIN_PART_BYTES, part_size
from tests.support.unit import STAGING


def parts_sent(s3: Any) -> list[int]:
    calls: list[int] = []
    s3.meta.events.register(
        "provide-client-params.s3.UploadPart",
        lambda params, **_: calls.append(params["PartNumber"]),
    )
    return calls


@pytest.fixture
def big(tmp_path: Path) -> Path:
    path = tmp_path / "big.csv"
    path.write_bytes(os.urandom(5 * MIN_PART_BYTES + 1234))  # 6 parts of 5 MiB
    return path


def test_an_interrupted_upload_resumes_with_the_missing_parts(s3: Any, big: Path) -> None:
    # GIVEN an upload stopped after 2 of its 6 parts
    sent = parts_sent(s3)
    with pytest.raises(UploadInterrupted):
        upload_file(s3, big, STAGING, "in/big.csv", part_size=MIN_PART_BYTES, stop_after_parts=2)
    assert len(sent) == 2
    assert s3.list_multipart_uploads(Bucket=STAGING)["Uploads"]
    # WHEN the same file is uploaded again to the same key
    result = upload_file(s3, big, STAGING, "in/big.csv", part_size=MIN_PART_BYTES)
    # THEN it resumed: only the 4 missing parts were sent, and the object is the file
    assert result.resumed
    assert (result.parts, result.parts_sent) == (6, 4)
    assert len(sent) == 6
    body = s3.get_object(Bucket=STAGING, Key="in/big.csv")["Body"].read()
    assert body == big.read_bytes()
    assert s3.list_multipart_uploads(Bucket=STAGING).get("Uploads", []) == []


def test_a_changed_file_replaces_the_parts_that_differ(s3: Any, big: Path) -> None:
    # GIVEN an interrupted upload (parts 1 and 2 sent), then the file changed in its first part
    with pytest.raises(UploadInterrupted):
        upload_file(
            s3,
            big,
            STAGING,
            "in/big.csv",
            part_size=MIN_PART_BYTES,
            concurrency=1,
            stop_after_parts=2,
        )
    data = bytearray(big.read_bytes())
    data[0:4] = b"NEW!"
    big.write_bytes(bytes(data))
    # WHEN uploaded again
    result = upload_file(s3, big, STAGING, "in/big.csv", part_size=MIN_PART_BYTES)
    # THEN the stale part 1 was sent again (part 2 kept) and the object is the new content
    assert result.parts_sent == 5
    assert s3.get_object(Bucket=STAGING, Key="in/big.csv")["Body"].read() == bytes(data)


def test_small_files_are_one_part(s3: Any, tmp_path: Path) -> None:
    path = tmp_path / "small.csv"
    path.write_bytes(b"a,b\n1,2\n")
    result = upload_file(s3, path, STAGING, "in/small.csv")
    assert (result.parts, result.parts_sent, result.resumed) == (1, 1, False)
    assert s3.get_object(Bucket=STAGING, Key="in/small.csv")["Body"].read() == b"a,b\n1,2\n"


def test_part_size_grows_to_stay_within_10000_parts() -> None:
    assert part_size(10, 1) == MIN_PART_BYTES
    assert part_size(100 * 1024**3, 8 * 1024**2) * 10_000 >= 100 * 1024**3


def test_ctrl_c_stops_the_upload_without_sending_the_queued_parts(s3: Any, big: Path) -> None:
    import _thread

    # GIVEN an upload of 6 parts, one at a time, interrupted (Ctrl-C) while sending part 2
    sent = parts_sent(s3)

    def interrupt(params: dict[str, Any], **_: Any) -> None:
        if params["PartNumber"] == 2:
            _thread.interrupt_main()  # what a Ctrl-C at the terminal does

    s3.meta.events.register("provide-client-params.s3.UploadPart", interrupt)
    # WHEN it is interrupted THEN it stops at once: the parts in flight finish (at most one
    # more here), the queued ones are never sent
    with pytest.raises(KeyboardInterrupt):
        upload_file(s3, big, STAGING, "in/ctrl-c.csv", part_size=MIN_PART_BYTES, concurrency=1)
    before = len(sent)
    assert sent[:2] == [1, 2] and before <= 3
    # AND the same upload resumes with the missing parts
    result = upload_file(s3, big, STAGING, "in/ctrl-c.csv", part_size=MIN_PART_BYTES)
    assert result.resumed and result.parts_sent == 6 - before
