"""Clips in S3-compatible object storage (AWS S3, MinIO, Garage, Ceph), through the MinIO SDK: the `s3` extra.

Chosen over boto3 for the one-file executable: the SDK is about 1 MB against botocore's 32 MB, and it speaks
to any endpoint path-style (AWS's own hosts virtual-hosted). Tested with minio 7.2 against moto's S3 server.
The bucket stays private: clips reach customers through the node's signed links, never presigned URLs.
Every call blocks (urllib3): the server runs them in worker threads.
"""

import logging
import os
import tempfile
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from vigint.config import StorageSettings
from vigint.errors import ConfigError
from vigint.files import make_private_folders
from vigint.incidents.storage import (
    CLIP_NAME,
    Chunks,
    ClipStorage,
    FolderStorage,
    Removal,
    StorageError,
    StoredObject,
    client_clip,
)
from vigint.locations import S3Location

try:
    import certifi
    import urllib3
    from minio import Minio
    from minio.error import MinioException, S3Error
    from minio.helpers import MIN_PART_SIZE
except ImportError:  # the s3 extra is optional: S3Storage says which package to install
    Minio = None

log = logging.getLogger(__name__)

T = TypeVar("T")
AWS_ENDPOINT = "https://s3.amazonaws.com"
# A clip's upload must not hold an incident's alert for long: an endpoint that takes no connection within
# 10 s is down, and the alert goes without its clip. Reads allow a slow link (the timeout is per read).
CONNECT_TIMEOUT_SECONDS = 10.0
READ_TIMEOUT_SECONDS = 60.0
# urllib3 retries refused connections and 5xx answers; S3 PUTs are whole-object, so a retry never half-writes.
MAX_RETRIES = 3
# Connections kept for reuse: the page streams up to [web] max_clip_streams clips from the bucket side by
# side.
MAX_CONNECTIONS = 32
NOT_FOUND = frozenset({"NoSuchKey", "NoSuchBucket", "ResourceNotFound"})
GROWING_FOLDER = "clips-growing"  # in data_dir


def _reason(error: Exception) -> str:
    """Say why a call failed, without request headers (where the credentials are)."""
    if Minio is not None and isinstance(error, S3Error):
        return f"{error.code}: {error.message}"
    return f"{type(error).__name__}: {error}"


class _Chunks:
    """An object's bytes as the bucket sends them, `chunk_bytes` at a time: a reader that stops reading holds
    one chunk here, and the rest waits in the bucket's connection."""

    def __init__(self, response, chunk_bytes: int, failure: Callable[[Exception], StorageError],
                 failures: tuple[type[Exception], ...]):
        self._response = response
        self._failure = failure
        self._failures = failures
        self._chunks = response.stream(chunk_bytes)

    def read(self) -> bytes:
        try:
            return next(self._chunks, b"")
        except self._failures as error:
            raise self._failure(error) from None

    def close(self) -> None:
        # the connection goes, unread bytes and all: never back into the pool half-read
        self._response.close()
        self._response.release_conn()


class S3Storage(ClipStorage):
    """Clips and stills as objects `<prefix>/<client>/<incident>.mp4` (and `…-<n>.jpg`) of one bucket."""

    def __init__(self, location: S3Location, settings: StorageSettings):
        """Raises ConfigError if the s3 extra is not installed or the credentials are incomplete."""
        if Minio is None:
            raise ConfigError(f"[storage] clips is {location}, but the S3 library is missing: "
                              "pip install 'vigint[s3]'")
        if bool(settings.s3_access_key_id) != bool(settings.s3_secret_access_key):
            raise ConfigError("[storage] s3_access_key_id and s3_secret_access_key go together: one is set "
                              "alone")
        endpoint = urlsplit(settings.s3_endpoint or AWS_ENDPOINT)
        self._location = location
        self._endpoint = f"{endpoint.scheme}://{endpoint.netloc}"
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT_SECONDS, read=READ_TIMEOUT_SECONDS),
            maxsize=MAX_CONNECTIONS,
            cert_reqs="CERT_REQUIRED", ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
            retries=urllib3.Retry(total=MAX_RETRIES, backoff_factor=0.2,
                                  status_forcelist=[500, 502, 503, 504]))
        self._client = Minio(endpoint.netloc, access_key=settings.s3_access_key_id or None,
                             secret_key=settings.s3_secret_access_key or None,
                             session_token=settings.s3_session_token or None,
                             secure=endpoint.scheme == "https", region=settings.s3_region or None,
                             http_client=http)
        self._failures = (MinioException, urllib3.exceptions.HTTPError, OSError, ValueError)
        # Clips grow on the node's disk, owner-only, and go to the bucket when published and once finished.
        self._growing = FolderStorage(settings.data_dir / GROWING_FOLDER)
        self.growing_folder = self._growing.growing_folder

    def __repr__(self) -> str:
        return f"S3Storage({str(self._location)!r}, endpoint={self._endpoint!r})"

    def _key(self, name: str) -> str:
        match = CLIP_NAME.fullmatch(name)
        if match is None:
            raise ValueError(f"{name!r} is not a clip name")
        return "/".join(part for part in (self._location.prefix, match[1], match[2]) if part)

    def write(self, name: str, make: Callable[[Path], T]) -> T:
        # Made whole in an owner-only temporary folder beside the growing clips (a clip may be large for a
        # /tmp in memory), then sent in one PUT: the object exists whole or not at all.
        make_private_folders(self.growing_folder)
        with tempfile.TemporaryDirectory(prefix=".vigint-clip-", dir=self.growing_folder) as folder:
            path = Path(folder) / name.rsplit("/", 1)[-1]
            result = make(path)
            self.put(path, name)
        return result

    def growing(self, name: str) -> Path:
        return self._growing.path(name)

    def publish(self, name: str) -> None:
        self.put(self.growing(name), name)

    def finish(self, name: str, make: Callable[[Path], T]) -> T:
        try:
            return self.write(name, make)
        finally:
            self.growing(name).unlink(missing_ok=True)

    def put(self, source: Path, name: str) -> None:
        key = self._key(name)
        size = source.stat().st_size
        kind = "image/jpeg" if name.endswith(".jpg") else "video/mp4"
        try:
            # One part as large as the clip: a single PUT, never a multipart upload that could be left behind.
            with source.open("rb") as data:
                self._client.put_object(self._location.bucket, key, data, size, content_type=kind,
                                        part_size=max(MIN_PART_SIZE, size))
        except self._failures as error:
            raise StorageError(f"cannot upload clip {name} to {self._location}: {_reason(error)}") from None

    def read(self, name: str) -> bytes | None:
        return self._reading(name, self._whole)

    def describe(self, name: str) -> StoredObject | None:
        found = self._reading(name, partial(self._client.stat_object, self._location.bucket))
        return None if found is None else StoredObject(found.size, f'"{found.etag}"')

    def open_part(self, name: str, stored: StoredObject, part: range, chunk_bytes: int) -> Chunks:
        # If-Match: a clip republished while it grows between describe() and here is refused, not spliced.
        try:
            response = self._client.get_object(self._location.bucket, self._key(name), offset=part.start,
                                               length=len(part), request_headers={"If-Match": stored.etag})
        except self._failures as error:
            raise self._cannot_read(name, error) from None
        return _Chunks(response, chunk_bytes, partial(self._cannot_read, name), self._failures)

    def _whole(self, key: str) -> bytes:
        response = self._client.get_object(self._location.bucket, key)
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def _reading(self, name: str, call: Callable[[str], T]) -> T | None:
        """Return `call(key)` for file `name`'s object, or None if there is none. Raises StorageError."""
        try:
            key = self._key(name)
        except ValueError:
            return None
        try:
            return call(key)
        except S3Error as error:
            if error.code in NOT_FOUND:
                return None
            raise self._cannot_read(name, error) from None
        except self._failures as error:
            raise self._cannot_read(name, error) from None

    def _cannot_read(self, name: str, error: Exception) -> StorageError:
        return StorageError(f"cannot read clip {name} from {self._location}: {_reason(error)}")

    def remove(self, client_id: int, name: str) -> Removal:
        if client_clip(client_id, name) is None:
            log.warning("client %d: clip %s is outside its own prefix, left in place", client_id, name)
            return Removal.KEPT
        try:
            # S3 answers a DELETE the same whether the object existed or not: a clip already gone counts as
            # removed. A missing bucket is an error, so a mistyped bucket never makes retention forget clips.
            self._client.remove_object(self._location.bucket, self._key(name))
        except self._failures as error:
            log.warning("client %d: cannot remove clip %s from %s: %s", client_id, name, self._location,
                        _reason(error))
            return Removal.KEPT
        return Removal.REMOVED

    def remove_client(self, client_id: int, names: Iterable[str]) -> int:
        removed = super().remove_client(client_id, names)
        prefix = "/".join(part for part in (self._location.prefix, str(client_id)) if part) + "/"
        try:
            objects = self._client.list_objects(self._location.bucket, prefix=prefix, recursive=True)
            left = sum(1 for _ in objects)
        except self._failures as error:
            log.warning("client %d: cannot list what is left under %s: %s", client_id, prefix, _reason(error))
            return removed
        if left:  # objects the database does not know, kept for the operator to judge
            log.warning("client %d: %d object(s) under s3://%s/%s kept", client_id, left,
                        self._location.bucket, prefix)
        return removed
