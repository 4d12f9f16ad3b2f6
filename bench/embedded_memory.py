"""Peak memory of the embedded runtime while it stores and serves a large object: write SIZE_MB
with a multipart upload (--part-mb parts), read it back, copy it with
UploadPartCopy (512 MiB parts, as Archive does), and print the process's peak RSS.

    .venv/bin/python bench/embedded_memory.py [SIZE_MB] [--part-mb 64] [--without-fixes]

``--without-fixes`` reverts the s3-* memory fixes of chute/local/moto_patches/s3_bodies.py
(moto as shipped). Client and server run in this one process, so the figure covers both.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from boto3.s3.transfer import TransferConfig

from chute.local import moto_patches
from chute.local.embedded import EmbeddedAws, LocalSettings, free_port

MEMORY_FIXES = (
    "s3-key-file-body",
    "s3-multipart-complete",
    "s3-get-object-streaming",
    "s3-upload-part-copy-range",
    "s3-copy-object-streaming",
)
MIB = 1024 * 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("size_mb", type=int, nargs="?", default=300)
    parser.add_argument("--part-mb", type=int, default=64)
    parser.add_argument("--without-fixes", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        source = Path(work) / "big.jsonl"
        line = b'{"a":"0","b":"0"}\n'
        with source.open("wb") as out:
            block = line * (MIB // len(line))
            for _ in range(args.size_mb):
                out.write(block)
        settings = LocalSettings(port=free_port(), state_dir=Path(work) / ".chute")
        with EmbeddedAws(settings) as aws:
            if args.without_fixes:
                for name in MEMORY_FIXES:
                    moto_patches.FIXES[name].revert()
            s3 = aws.client("s3")
            bucket = aws.resources.output_bucket
            config = TransferConfig(multipart_chunksize=args.part_mb * MIB, max_concurrency=2)
            started = time.monotonic()
            s3.upload_file(str(source), bucket, "big.jsonl", Config=config)
            wrote = time.monotonic() - started
            started = time.monotonic()
            body = s3.get_object(Bucket=bucket, Key="big.jsonl")["Body"]
            size = sum(len(chunk) for chunk in body.iter_chunks(MIB))
            read = time.monotonic() - started
            started = time.monotonic()
            upload = s3.create_multipart_upload(Bucket=aws.resources.archive_bucket, Key="big")
            parts, offset, number = [], 0, 1
            while offset < size:
                end = min(offset + 512 * MIB, size) - 1
                part = s3.upload_part_copy(
                    Bucket=aws.resources.archive_bucket,
                    Key="big",
                    UploadId=upload["UploadId"],
                    PartNumber=number,
                    CopySource={"Bucket": bucket, "Key": "big.jsonl"},
                    CopySourceRange=f"bytes={offset}-{end}",
                )
                parts.append({"PartNumber": number, "ETag": part["CopyPartResult"]["ETag"]})
                offset, number = end + 1, number + 1
            s3.complete_multipart_upload(
                Bucket=aws.resources.archive_bucket,
                Key="big",
                UploadId=upload["UploadId"],
                MultipartUpload={"Parts": parts},
            )
            copied = time.monotonic() - started
            if args.without_fixes:
                for name in MEMORY_FIXES:
                    moto_patches.FIXES[name].apply()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{args.size_mb} MB ({args.part_mb} MiB parts)"
            f" {'without' if args.without_fixes else 'with'} the fixes:"
            f" write {wrote:.1f}s, read {read:.1f}s ({size} bytes), copy {copied:.1f}s,"
            f" peak RSS {peak:.0f} MiB"
        )


if __name__ == "__main__":
    main()
