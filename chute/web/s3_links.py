"""S3 objects as the console's pages use them: presigned links (the browser talks to S3 with
the console's signature, never its credentials), small JSON documents, and a preview of a CSV's
first rows."""

from __future__ import annotations

import csv
import io
import json
import zlib
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError

from chute.ops.deployment import Deployment

PREVIEW_BYTES = 256 * 1024
LINK_SECONDS = 900


class S3Links:
    def __init__(self, deployment: Deployment) -> None:
        self.d = deployment
        self._presigner: Any = None

    def json(self, bucket: str, key: str) -> dict[str, Any] | None:
        try:
            body = self.d.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404", "AccessDenied"):
                return None
            raise
        try:
            document = json.loads(body)
        except ValueError:
            return None
        return document if isinstance(document, dict) else None

    def link(self, bucket: str, key: str) -> str:
        """A presigned GET: the browser downloads from S3 directly, signed by the console's
        credentials, which never reach the page."""
        return self.presign("get_object", {"Bucket": bucket, "Key": key})

    def presign(self, operation: str, params: dict[str, Any]) -> str:
        if self._presigner is None:
            # SigV4 (its signature carries the expiry), on the bucket's regional endpoint
            config = Config(signature_version="s3v4", s3={"addressing_style": "virtual"})
            where = {"endpoint_url": self.d.endpoint_url} if self.d.endpoint_url else {}
            self._presigner = self.d.session.client(
                "s3", region_name=self.d.region, config=config, **where
            )
        return str(
            self._presigner.generate_presigned_url(operation, Params=params, ExpiresIn=LINK_SECONDS)
        )

    def preview(self, bucket: str, key: str) -> tuple[list[tuple[int, list[str]]], str | None]:
        try:
            first = f"bytes=0-{PREVIEW_BYTES - 1}"
            body = self.d.s3.get_object(Bucket=bucket, Key=key, Range=first)
            data = body["Body"].read()
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code == "InvalidRange":  # a range of an empty object
                return [], "no preview: the file is empty (0 bytes)"
            if code in ("NoSuchKey", "404"):
                return [], "no preview: the file is no longer there"
            return [], f"no preview: S3 answered {code}"
        if key.lower().endswith(".gz"):
            try:
                data = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data, PREVIEW_BYTES * 4)
            except zlib.error:
                return [], "no preview: not readable as gzip"
        elif key.lower().endswith((".zst", ".bz2")):
            return [], "no preview of this compression; download the original"
        text = data.decode("utf-8", errors="replace")
        if len(data) >= PREVIEW_BYTES:
            text = text.rsplit("\n", 1)[0]  # no half line
        lines = text.splitlines()
        try:
            dialect: Any = csv.Sniffer().sniff(lines[0] if lines else "", delimiters=",;\t|")
        except csv.Error:
            dialect = csv.excel
        rows = list(csv.reader(io.StringIO("\n".join(lines)), dialect))
        return [(n, cells) for n, cells in enumerate(rows, start=1)], None
