"""A local S3-compatible store for the tests: moto's server (``ThreadedMotoServer``, the test extra's
``moto[server]``) on 127.0.0.1 at a free port, in this process, which a test can stop and start again on the same
port (its buckets live on in moto's memory) to take the store down and bring it back; credentials for it the
standard way (the environment, as boto3 reads it), none of this machine's own.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REGION = "eu-west-1"


def store_env(directory: Path) -> dict[str, str]:
    """The environment boto3 takes the test's credentials from: fake keys, no shared files, no instance metadata
    (nothing but loopback is ever asked), no proxy."""
    return {"AWS_ACCESS_KEY_ID": "t1046-test", "AWS_SECRET_ACCESS_KEY": "t1046-test", "AWS_REGION": REGION,
            "AWS_CONFIG_FILE": str(directory / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(directory / "no-aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true", "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


class Store:
    """moto's S3 server on loopback: :meth:`stop` takes it down, :meth:`start` brings it back on its port."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._server_class = ThreadedMotoServer
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._server: Any = None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._server = self._server_class(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def client(self) -> Any:
        import boto3

        return boto3.session.Session().client("s3", endpoint_url=self.url, region_name=REGION)

    def bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
        return name

    def put(self, bucket: str, key: str, body: bytes) -> str:
        """Upload an object; its ETag."""
        return str(self.client().put_object(Bucket=bucket, Key=key, Body=body)["ETag"]).strip('"')


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """A running store, this process's boto3 pointed at it by the environment; skipped without moto or boto3."""
    pytest.importorskip("boto3", reason="boto3 (the s3 extra) is not installed")
    pytest.importorskip("moto.server", reason="moto's server (moto[server], in the test extra) is not installed")
    for name, value in store_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the server's line per request
    found = Store()
    found.start()
    try:
        yield found
    finally:
        found.stop()


_BUCKETS = itertools.count()


def bucket_name() -> str:
    """A bucket name of this test's own (moto's buckets outlive a server in its process)."""
    return f"t1046-flows-{os.getpid()}-{next(_BUCKETS)}"
