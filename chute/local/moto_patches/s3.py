"""S3: its events and conditional writes as AWS has them, and the hooks that report every changed
object to chute.local.persistence before the response is sent. (Object bodies: s3_bodies.)

CompleteMultipartUpload also emits ObjectCreated:Put; events lack sequencer/versionId and encode
'/' in keys as %2F; CompleteMultipartUpload ignores If-Match (AWS: 412 when the current object
has another ETag, 404 when there is none), and CopyObject ignores If-Match and If-None-Match on
its destination and x-amz-copy-source-if-match on its source (AWS: 412), which chute's
newest-version-wins publication relies on.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any
from urllib.parse import parse_qs, quote_plus, unquote, urlparse

from moto.s3 import notifications as s3_notifications
from moto.s3.exceptions import MissingKey, PreconditionFailed
from moto.s3.models import S3Backend
from moto.s3.responses import S3Response

from chute.local.moto_patches.seam import HOOKS, Fixes, Kind

FIXES = Fixes()


# --- events -----------------------------------------------------------------------------------
@FIXES.declare(
    "s3-multipart-put-event",
    Kind.BEHAVIOUR,
    S3Backend,
    "put_object",
    why="CompleteMultipartUpload also emits a spurious ObjectCreated:Put",
)
def _s3_put_without_duplicate_event(original: Any) -> Any:
    def put_object(self: S3Backend, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("multipart") is not None:
            # complete_multipart_upload sends its own CompleteMultipartUpload event.
            kwargs["disable_notification"] = True
        return original(self, *args, **kwargs)

    return put_object


_SEQUENCE = itertools.count(1)
_SEQUENCE_LOCK = threading.Lock()


@FIXES.declare(
    "s3-event-fields",
    Kind.BEHAVIOUR,
    s3_notifications,
    "_get_s3_event",
    why="S3 events lack sequencer/versionId and encode '/' as %2F",
)
def _s3_event_fields(original: Any) -> Any:
    def _get_s3_event(event_name: str, bucket: Any, key: Any, notification_id: str) -> Any:
        event = original(event_name, bucket, key, notification_id)
        with _SEQUENCE_LOCK:
            sequencer = f"{time.time_ns():016X}{next(_SEQUENCE):08X}"
        for record in event["Records"]:
            obj = record["s3"]["object"]
            obj["key"] = quote_plus(key.name, safe="/")
            obj["sequencer"] = sequencer
            version = getattr(key, "version_id", None)
            if version and version != "null":
                obj["versionId"] = version
        return event

    return _get_s3_event


# --- persistence hooks (chute.local.persistence) ----------------------------------------------
@FIXES.declare(
    "persist-s3-put",
    Kind.PERSISTENCE,
    S3Response,
    "put_object",
    why="hook: PutObject reports the key it wrote (before answering)",
)
def _object_written(original: Any) -> Any:
    def handler(self: S3Response, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        if HOOKS.object_written is not None:
            HOOKS.object_written(self.backend, self.bucket_name, self.parse_key_name())
        return result

    return handler


FIXES.declare(
    "persist-s3-copy",
    Kind.PERSISTENCE,
    S3Response,
    "copy_object",
    why="hook: CopyObject reports the key it wrote (before answering)",
)(_object_written)


FIXES.declare(
    "persist-s3-delete",
    Kind.PERSISTENCE,
    S3Response,
    "delete_object",
    why="hook: DeleteObject reports the key it deleted (before answering)",
)(_object_written)


@FIXES.declare(
    "persist-s3-key-post",
    Kind.PERSISTENCE,
    S3Response,
    "_key_response_post",
    why="hook: CompleteMultipartUpload (a POST on the key) reports the key it wrote",
)
def _key_post_written(original: Any) -> Any:
    def _key_response_post(
        self: S3Response,
        request: Any,
        body: bytes,
        bucket_name: str,
        query: dict[str, Any],
        key_name: str,
    ) -> Any:
        result = original(self, request, body, bucket_name, query, key_name)
        if HOOKS.object_written is not None:
            HOOKS.object_written(self.backend, bucket_name, key_name)
        return result

    return _key_response_post


@FIXES.declare(
    "persist-s3-bucket-post",
    Kind.PERSISTENCE,
    S3Response,
    "_bucket_response_post",
    why="hook: DeleteObjects and browser form uploads (POSTs on the bucket) report it",
)
def _bucket_post_written(original: Any) -> Any:
    def _bucket_response_post(self: S3Response, request: Any, bucket_name: str) -> Any:
        result = original(self, request, bucket_name)
        if HOOKS.bucket_written is not None:
            HOOKS.bucket_written(self.backend, bucket_name)
        return result

    return _bucket_response_post


# --- conditional writes -----------------------------------------------------------------------
@FIXES.declare(
    "s3-complete-if-match",
    Kind.BEHAVIOUR,
    S3Response,
    "_key_response_post",
    why="CompleteMultipartUpload ignores If-Match",
)
def _s3_complete_if_match(original: Any) -> Any:
    def _key_response_post(
        self: Any, request: Any, body: bytes, bucket_name: str, query: Any, key_name: str
    ) -> Any:
        if_match = self.headers.get("If-Match")
        if query.get("uploadId") and if_match:
            existing = self.backend.get_object(bucket_name, key_name)
            multipart_id = query["uploadId"][0]
            repeated = existing is not None and getattr(existing.multipart, "id", None) == (
                multipart_id
            )
            if not repeated:
                if existing is None:
                    raise MissingKey(key=key_name)
                if if_match.replace('"', "") != existing.etag.replace('"', ""):
                    raise PreconditionFailed("If-Match")
        return original(self, request, body, bucket_name, query, key_name)

    return _key_response_post


@FIXES.declare(
    "s3-copy-object-conditions",
    Kind.BEHAVIOUR,
    S3Response,
    "copy_object",
    why="CopyObject ignores If-Match, If-None-Match and x-amz-copy-source-if-match",
)
def _s3_copy_object_conditions(original: Any) -> Any:
    """As AWS answers a conditional CopyObject: 412 when the destination exists under
    ``If-None-Match: *`` or has another ETag under ``If-Match`` (404 when there is none), and
    when the source (that version) has another ETag than ``x-amz-copy-source-if-match``."""

    def copy_object(self: S3Response) -> Any:
        key_name = self.parse_key_name()
        if_none_match = self.headers.get("If-None-Match")
        if_match = self.headers.get("If-Match")
        if if_none_match == "*" or if_match:
            existing = self.backend.get_object(self.bucket_name, key_name)
            if if_none_match == "*" and existing is not None:
                raise PreconditionFailed("If-None-Match")
            if if_match:
                if existing is None:
                    raise MissingKey(key=key_name)
                if if_match.replace('"', "") != existing.etag.replace('"', ""):
                    raise PreconditionFailed("If-Match")
        source_if_match = self.headers.get("x-amz-copy-source-if-match")
        if source_if_match:
            parsed = urlparse(str(self.headers.get("x-amz-copy-source", "")))
            bucket, _, key = unquote(parsed.path).lstrip("/").partition("/")
            version = parse_qs(parsed.query).get("versionId", [None])[0]
            source = self.backend.get_object(bucket, key, version_id=version)
            if source is not None and source_if_match.replace('"', "") != source.etag.replace(
                '"', ""
            ):
                raise PreconditionFailed("x-amz-copy-source-If-Match")
        return original(self)

    return copy_object
