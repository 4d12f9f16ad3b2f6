"""Upload grants for clients without AWS credentials: the server picks the key, the client may
put exactly that one object and nothing else.

Three kinds: a presigned PUT bound to the content type, a presigned POST whose policy fixes the
key and a size range, and temporary credentials whose session policy allows only the upload
actions (multipart included) on that key. Expiry is short; S3 enforces signature, expiry and POST
policy (Validate enforces the size and extension limits again).
"""

from __future__ import annotations

import json
import re
import unicodedata
import uuid as uuid_module
from datetime import UTC, datetime
from typing import Any

MAX_NAME_CHARS = 100
DEFAULT_EXPIRES_SECONDS = 15 * 60
MAX_ROLE_SESSION_SECONDS = 3600  # role chaining caps sessions at one hour
_TENANT = re.compile(r"[^A-Za-z0-9_-]")
_EXTENSIONS = re.compile(r"(\.[A-Za-z0-9]{1,5}){1,2}$")  # ".csv", ".csv.gz"
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\\\:*?\"<>|]")


class GrantError(ValueError):
    """The request can't be granted (bad tenant, nothing left of the name...)."""


def sanitize_tenant(tenant: str) -> str:
    clean = _TENANT.sub("", unicodedata.normalize("NFKC", tenant))[:64]
    if not clean:
        raise GrantError(f"tenant {tenant!r} has no usable characters")
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


def presigned_put(
    s3: Any, bucket: str, key: str, content_type: str, expires: int = DEFAULT_EXPIRES_SECONDS
) -> dict[str, Any]:
    url = s3.generate_presigned_url(
        "put_object",
        Params={"Bucket": bucket, "Key": key, "ContentType": content_type},
        ExpiresIn=expires,
    )
    return {
        "kind": "put",
        "key": key,
        "url": url,
        "headers": {"Content-Type": content_type},
        "expiresIn": expires,
    }


def presigned_post(
    s3: Any, bucket: str, key: str, max_bytes: int, expires: int = DEFAULT_EXPIRES_SECONDS
) -> dict[str, Any]:
    post = s3.generate_presigned_post(
        Bucket=bucket,
        Key=key,
        Conditions=[["content-length-range", 1, max_bytes], {"key": key}],
        ExpiresIn=expires,
    )
    return {"kind": "post", "key": key, **post, "expiresIn": expires}


def temporary_credentials(
    sts: Any, role_arn: str, bucket: str, key: str, seconds: int = MAX_ROLE_SESSION_SECONDS
) -> dict[str, Any]:
    response = sts.assume_role(
        RoleArn=role_arn,
        RoleSessionName=f"chute-upload-{uuid_module.uuid4().hex[:16]}",
        Policy=json.dumps(session_policy(bucket, key)),
        DurationSeconds=min(seconds, MAX_ROLE_SESSION_SECONDS),
    )
    credentials = response["Credentials"]
    return {
        "kind": "credentials",
        "key": key,
        "bucket": bucket,
        "accessKeyId": credentials["AccessKeyId"],
        "secretAccessKey": credentials["SecretAccessKey"],
        "sessionToken": credentials["SessionToken"],
        "expiration": credentials["Expiration"].isoformat(),
    }
