"""Where clips go: `[storage] clips` names a folder or an S3 location, `[storage] s3_endpoint` the S3 service.
Pure parsing, checked when settings are read, so that a typo is refused at start rather than at the first
clip."""

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

# S3's rules for bucket names (AWS, MinIO, Garage and Ceph accept these): 3-63 lowercase letters, digits,
# dots, hyphens.
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


@dataclass(frozen=True)
class S3Location:
    """Where clips go in object storage: `s3://bucket/prefix` (the prefix has no outer slashes, may be
    empty)."""

    bucket: str
    prefix: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


def clips_location(text: str) -> S3Location | Path | None:
    """Parse `[storage] clips`: None for the default folder (data_dir/clips), a folder, or an S3 location.

    Raises ValueError for an S3 URL without a valid bucket, or a URL of another scheme.
    """
    text = text.strip()
    if not text:
        return None
    scheme, separator, rest = text.partition("://")
    if not separator:
        return Path(text).expanduser()
    if scheme.lower() != "s3":
        raise ValueError(f"{text!r} is neither a folder nor s3://bucket/prefix (unknown scheme {scheme!r})")
    bucket, _, prefix = rest.partition("/")
    if not BUCKET_NAME.fullmatch(bucket):
        raise ValueError(f"{text!r} names no valid bucket (s3://bucket/prefix; a bucket is 3-63 lowercase "
                         "letters, digits, dots or hyphens)")
    prefix = prefix.strip("/")
    if prefix and any(part in ("", ".", "..") for part in prefix.split("/")):
        raise ValueError(f"{text!r}: the prefix must not hold empty, '.' or '..' parts")
    return S3Location(bucket, prefix)


def endpoint_url(text: str) -> str:
    """Check `[storage] s3_endpoint`: empty (AWS) or http(s)://host[:port]. Raises ValueError."""
    if text:
        parts = urlsplit(text)
        if "@" in parts.netloc:  # said without echoing the value: it holds credentials
            raise ValueError("credentials go in s3_access_key_id and s3_secret_access_key, not in the URL")
        if (parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/")
                or parts.query):
            raise ValueError(f"{text!r} is not http(s)://host[:port]")
    return text
