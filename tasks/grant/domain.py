"""Upload grants for clients without AWS credentials: the server picks the key, the client may
put exactly that one object and nothing else.

Three kinds: a presigned PUT bound to the content type, a presigned POST whose policy fixes the
key, the content type and a size range, and temporary credentials whose session policy allows
only the upload actions (multipart included) on that key. S3 enforces signature, expiry and the
POST policy; the grant refuses sizes and extensions the pipeline would reject, and Validate
checks size and extension again for files that arrive any other way.
"""

from __future__ import annotations

import re
import unicodedata
import uuid as uuid_module
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, cast, get_args

from tasks.settings import GrantSettings

Kind = Literal["put", "post", "credentials"]
KINDS: tuple[Kind, ...] = get_args(Kind)
MAX_NAME_CHARS = 100
MAX_ROLE_SESSION_SECONDS = 3600  # role chaining caps sessions at one hour
MAX_SINGLE_UPLOAD_BYTES = 5 * 1024**3  # S3: a PUT or POST object is at most 5 GB
_TENANT = re.compile(r"[^A-Za-z0-9_-]")
_EXTENSIONS = re.compile(r"(\.[A-Za-z0-9]{1,5}){1,2}$")  # ".csv", ".csv.gz"
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\\\:*?\"<>|]")

# The content type a grant binds when the client names none: by the last extension.
CONTENT_TYPES: Mapping[str, str] = {
    ".csv": "text/csv",
    ".tsv": "text/tab-separated-values",
    ".txt": "text/plain",
    ".psv": "text/plain",
    ".gz": "application/gzip",
    ".zst": "application/zstd",
    ".bz2": "application/x-bzip2",
}
# What a client may ask for instead (browsers label .csv files in several ways).
ALLOWED_CONTENT_TYPES: frozenset[str] = frozenset(
    {
        *CONTENT_TYPES.values(),
        "application/csv",
        "application/x-gzip",
        "application/octet-stream",
        "application/vnd.ms-excel",
    }
)


class GrantError(ValueError):
    """The request can't be granted; the message says why (HTTP 400)."""

    status = 400


class NoTenant(GrantError):
    """The caller's verified identity names no tenant (HTTP 403)."""

    status = 403


def sanitize_tenant(tenant: str) -> str:
    clean = _TENANT.sub("", unicodedata.normalize("NFKC", tenant))[:64]
    if not clean:
        raise NoTenant(f"tenant {tenant!r} has no usable characters")
    return clean


def sanitize_name(name: str) -> str:
    """A file name safe to put in a key: NFC, no control characters, no path separators, no
    ``..``, no leading dots or spaces, at most MAX_NAME_CHARS; ``file`` if nothing is left."""
    text = unicodedata.normalize("NFC", name)
    text = "".join(c for c in text if unicodedata.category(c)[0] != "C")
    text = _UNSAFE.sub("_", text)
    while ".." in text:
        text = text.replace("..", ".")
    text = text.strip(" .")
    if len(text) > MAX_NAME_CHARS:
        _stem, dot, ext = text.rpartition(".")
        keep = ext if dot and len(ext) <= 10 else ""
        text = text[: MAX_NAME_CHARS - len(keep) - 1].rstrip(" .") + (f".{keep}" if keep else "")
    return text or "file"


def grant_key(tenant: str, name: str, now: datetime | None = None, uid: str | None = None) -> str:
    """``<tenant>/<name>_<UTC time>_<uuid><extensions>``: the extensions stay last so the
    pipeline still recognises the format (``orders.csv.gz`` -> ``orders_..._<uuid>.csv.gz``)."""
    clean = sanitize_name(name)
    match = _EXTENSIONS.search(clean)
    stem, extensions = (clean[: match.start()], match.group()) if match else (clean, "")
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    unique = uid or uuid_module.uuid4().hex
    return f"{sanitize_tenant(tenant)}/{stem or 'file'}_{stamp}_{unique}{extensions}"


def session_policy(bucket: str, key: str, partition: str = "aws") -> dict[str, Any]:
    """Allows exactly the upload of one object (PutObject covers Create/UploadPart/Complete
    MultipartUpload) and cleaning up its own multipart upload."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "s3:PutObject",
                    "s3:AbortMultipartUpload",
                    "s3:ListMultipartUploadParts",
                ],
                "Resource": f"arn:{partition}:s3:::{bucket}/{key}",
            }
        ],
    }


@dataclass(frozen=True)
class GrantRequest:
    """What a client asks for: ``{"name", "kind"?, "contentType"?, "size"?}``."""

    name: str
    kind: Kind = "put"
    content_type: str | None = None
    size: int | None = None
    """The file's size in bytes, if the client says: refused early when over the limits."""

    @classmethod
    def from_json(cls, body: object) -> GrantRequest:
        if not isinstance(body, Mapping):
            raise GrantError('the request body must be a JSON object like {"name": "orders.csv"}')
        unknown = sorted(set(body) - {"name", "kind", "contentType", "size"})
        if unknown:
            raise GrantError(f"unknown field(s) {', '.join(map(repr, unknown))}")
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise GrantError('"name" (the file name, a non-empty string) is required')
        kind = body.get("kind", "put")
        if kind not in KINDS:
            raise GrantError(f'"kind" must be one of {", ".join(KINDS)}, not {kind!r}')
        content_type = body.get("contentType")
        if content_type is not None and not isinstance(content_type, str):
            raise GrantError('"contentType" must be a string')
        size = body.get("size")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise GrantError('"size" must be a positive integer (bytes)')
        return cls(name=name, kind=cast(Kind, kind), content_type=content_type, size=size)


class Signer(Protocol):
    """Signs for S3 and STS with the grant service's own credentials (tasks.adapters.signer)."""

    region: str

    def presign_put(
        self,
        bucket: str,
        key: str,
        content_type: str,
        expires: int,
        content_length: int | None = None,
    ) -> str:
        """A presigned PUT URL whose signature covers the content type (and the length)."""
        ...

    def presign_post(
        self,
        bucket: str,
        key: str,
        fields: dict[str, str],
        conditions: list[Any],
        expires: int,
    ) -> dict[str, Any]:
        """``{"url": ..., "fields": {...}}``"""
        ...

    def assume_role(
        self, role_arn: str, session_name: str, policy: dict[str, Any], seconds: int
    ) -> dict[str, str]:
        """``{"accessKeyId", "secretAccessKey", "sessionToken", "expiration"}``"""
        ...


def _content_type(request: GrantRequest, key: str) -> str:
    if request.content_type is None:
        return CONTENT_TYPES.get("." + key.rsplit(".", 1)[-1].lower(), "application/octet-stream")
    chosen = request.content_type.split(";")[0].strip().lower()
    if chosen not in ALLOWED_CONTENT_TYPES:
        raise GrantError(
            f"content type {request.content_type!r} is not accepted"
            f" (use one of {', '.join(sorted(ALLOWED_CONTENT_TYPES))})"
        )
    return chosen


def _check_limits(request: GrantRequest, key: str, settings: GrantSettings) -> None:
    if not key.lower().endswith(settings.suffixes):
        raise GrantError(
            f"{request.name!r}: files of this type are not processed"
            f" (accepted: {', '.join(settings.suffixes)})"
        )
    if request.size is None:
        return
    if request.size > settings.max_file_bytes:
        raise GrantError(
            f"{request.size} bytes is over the maximum file size of {settings.max_file_bytes}"
        )
    if request.kind != "credentials" and request.size > MAX_SINGLE_UPLOAD_BYTES:
        raise GrantError(
            f"a {request.kind.upper()} upload is at most {MAX_SINGLE_UPLOAD_BYTES} bytes;"
            ' ask for "kind": "credentials" and upload in parts'
        )


def mint(
    request: GrantRequest,
    tenant: str,
    settings: GrantSettings,
    signer: Signer,
    *,
    now: datetime | None = None,
    uid: str | None = None,
) -> dict[str, Any]:
    """The grant document for ``request`` from ``tenant`` (already authenticated)."""
    unique = uid or uuid_module.uuid4().hex
    key = settings.prefix + grant_key(tenant, request.name, now=now, uid=unique)
    _check_limits(request, key, settings)
    bucket = settings.staging_bucket
    expires = settings.expires_seconds
    common: dict[str, Any] = {"kind": request.kind, "bucket": bucket, "key": key}
    if request.kind == "put":
        content_type = _content_type(request, key)
        # A declared size is signed too: S3 then refuses a body of any other length.
        url = signer.presign_put(bucket, key, content_type, expires, content_length=request.size)
        headers = {"Content-Type": content_type}
        put = {"method": "PUT", "url": url, "headers": headers, "expiresIn": expires}
        return {**common, **put, **({"size": request.size} if request.size else {})}
    if request.kind == "post":
        content_type = _content_type(request, key)
        largest = min(settings.max_file_bytes, MAX_SINGLE_UPLOAD_BYTES)
        post = signer.presign_post(
            bucket,
            key,
            fields={"Content-Type": content_type},
            conditions=[
                {"key": key},
                {"Content-Type": content_type},
                ["content-length-range", 1, largest],
            ],
            expires=expires,
        )
        return {**common, "method": "POST", **post, "maxBytes": largest, "expiresIn": expires}
    if not settings.upload_role_arn:
        raise GrantError("credentials grants are not offered here: no upload role is configured")
    arn = settings.upload_role_arn.split(":")
    partition = arn[1] if len(arn) > 1 and arn[1] else "aws"
    credentials = signer.assume_role(
        settings.upload_role_arn,
        session_name=f"chute-upload-{unique[:16]}",
        policy=session_policy(bucket, key, partition),
        seconds=MAX_ROLE_SESSION_SECONDS,
    )
    return {**common, "region": signer.region, **credentials}
