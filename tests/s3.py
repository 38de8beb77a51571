"""A real S3 endpoint on loopback for the clip-storage tests: moto's standalone server, which speaks S3's HTTP API.

`s3_endpoint` (in conftest.py) starts one per test process; `Bucket` is one test's own bucket, reached with the
MinIO SDK as the server reaches it.
"""

import secrets
from dataclasses import dataclass

import pytest

from vigint.config import StorageSettings

REGION = "us-east-1"
ACCESS_KEY_ID = "AKIAVIGINTTESTKEY"
# Recognisable in any log or repr it might leak into.
SECRET_ACCESS_KEY = "s3cr3t-" + "q" * 33


def start_endpoint():
    """Start moto's S3 server on 127.0.0.1 port 0; return (server, "http://127.0.0.1:PORT"), or skip the test
    with the reason if moto is missing or cannot start."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as error:
        pytest.skip(f"no S3 endpoint for the tests: moto[server] is not installed ({error}); "
                    "pip install -e '.[dev]'")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    try:
        server.start()
    except OSError as error:
        pytest.skip(f"no S3 endpoint for the tests: moto's server cannot start ({error})")
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


@dataclass
class Bucket:
    """One test's bucket on the loopback endpoint."""

    endpoint: str
    name: str

    def __post_init__(self):
        from minio import Minio

        self.client = Minio(self.endpoint.removeprefix("http://"), access_key=ACCESS_KEY_ID,
                            secret_key=SECRET_ACCESS_KEY, secure=False, region=REGION)

    @classmethod
    def create(cls, endpoint: str) -> "Bucket":
        bucket = cls(endpoint, f"clips-{secrets.token_hex(6)}")
        bucket.client.make_bucket(bucket.name)
        return bucket

    def settings(self, prefix: str = "site-a", bucket_name: str | None = None, **others) -> StorageSettings:
        """Storage settings with clips in this bucket (or another named one) under `prefix`."""
        return StorageSettings(clips=f"s3://{bucket_name or self.name}/{prefix}", s3_endpoint=self.endpoint,
                               s3_region=REGION, s3_access_key_id=ACCESS_KEY_ID,
                               s3_secret_access_key=SECRET_ACCESS_KEY, **others)

    def objects(self) -> dict[str, bytes]:
        """Every object in the bucket, by key."""
        found = {}
        for item in self.client.list_objects(self.name, recursive=True):
            response = self.client.get_object(self.name, item.object_name)
            try:
                found[item.object_name] = response.read()
            finally:
                response.close()
                response.release_conn()
        return found

    def exists(self) -> bool:
        return self.client.bucket_exists(self.name)
