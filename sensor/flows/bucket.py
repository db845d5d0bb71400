"""An S3 prefix as a flow source reads it (boto3, the optional ``s3`` extra): its objects listed in key order past
a mark, each object's content as a stream (gzip uncompressed on the fly, a bounded piece at a time), and the
ledger of what has been read, which the daemon's checkpoint keeps as one line of text.

Credentials are boto3's own (the environment, ``~/.aws``, the instance or task role): nothing here takes one. AWS
delivers a flow log's objects under ``AWSLogs/ACCOUNT/vpcflowlogs/REGION/YYYY/MM/DD/``, so key order is day
order, and within a day the order of the flow log's id and then of the delivery's time. The ledger is bounded
by that: every key up to its mark (``after``) counts as read, and the keys past the mark that were read are
kept with their ETags, about :data:`KEEP` (past a quarter more, the smallest move the mark up). An object
delivered with a key below the mark (more than :data:`KEEP` objects late in key order) is not read. An object
whose ETag changed under a key read before (replaced) is read again.

Nothing here parses a record or judges one: :mod:`sensor.flows.s3` hands the content to the flow parsers.
"""

from __future__ import annotations

import importlib.util
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson

from sensor.config import S3Prefix
from sensor.errors import SensorError

INSTALL_HINT = "pip install 't1046-sensor[s3]'"
"""How to install what an S3 source needs (boto3)."""
KEEP = 4096
"""Keys past the ledger's mark remembered with their ETags (about 14 flow logs' days of 5-minute deliveries)."""
PIECE = 1 << 20
"""Bytes of an object's (uncompressed) content handed on at a time, at the most, beside one line's rest."""
CONNECT_TIMEOUT, READ_TIMEOUT = 10.0, 30.0
"""Seconds boto3 waits to connect to the store and for its next bytes; then the listing is tried again later."""
_LEDGER = "s3 "
"""How a ledger's line starts among the checkpoint's finished files (which are fingerprints otherwise)."""


class StoreError(SensorError):
    """The store cannot be listed or read now (down, slow, refusing): tried again after a pause."""


class Gone(SensorError):
    """The object is no longer what was listed (deleted, or replaced: another ETag)."""


def missing_dependency() -> str | None:
    """``boto3`` when it is not installed (an S3 source needs it), else None; without importing it."""
    return "boto3" if importlib.util.find_spec("boto3") is None else None


@dataclass(frozen=True, slots=True)
class StoredObject:
    """One object of the prefix, as the listing gave it."""

    key: str
    etag: str
    modified: float
    """Its LastModified, in seconds since the epoch."""


@dataclass(slots=True)
class Ledger:
    """What of one S3 prefix has been read (see the module's docstring)."""

    url: str
    since: float
    """When the source was first followed: objects modified before then were there already and are not read."""
    after: str = ""
    read: dict[str, str] = field(default_factory=dict)
    """Keys past ``after`` read (or passed over), with their ETags."""

    def has(self, found: StoredObject) -> bool:
        return found.key <= self.after or self.read.get(found.key) == found.etag

    def add(self, key: str, etag: str) -> None:
        self.read[key] = etag
        if len(self.read) > KEEP + KEEP // 4:  # sorted a quarter of KEEP adds at a time, not at every add
            evicted = sorted(self.read)[:len(self.read) - KEEP]
            for old in evicted:
                del self.read[old]
            self.after = max(self.after, evicted[-1])

    def copy(self) -> Ledger:
        return Ledger(self.url, self.since, self.after, dict(self.read))

    def text(self) -> str:
        """The ledger as one line of plain text (JSON), as the checkpoint keeps it."""
        return _LEDGER + orjson.dumps({"url": self.url, "since": self.since, "after": self.after,
                                       "read": self.read}).decode()

    @classmethod
    def find(cls, lines: frozenset[str] | set[str], url: str) -> Ledger | None:
        """The ledger of ``url`` among a checkpoint's lines, or None (none yet, or of another prefix)."""
        for line in lines:
            if not line.startswith(_LEDGER):
                continue
            try:
                found = orjson.loads(line[len(_LEDGER):])
            except orjson.JSONDecodeError:
                continue
            if not isinstance(found, dict) or found.get("url") != url:
                continue
            since, after, read = found.get("since"), found.get("after"), found.get("read")
            if (isinstance(since, int | float) and isinstance(after, str) and isinstance(read, dict)
                    and all(isinstance(k, str) and isinstance(v, str) for k, v in read.items())):
                return cls(url, float(since), after, read)
        return None


class Bucket:
    """One S3 prefix through a boto3 client of its own (thread-safe; made on the first request)."""

    def __init__(self, prefix: S3Prefix, connect_timeout: float = CONNECT_TIMEOUT,
                 read_timeout: float = READ_TIMEOUT) -> None:
        self.prefix = prefix
        self._timeouts = (connect_timeout, read_timeout)
        self._client: Any = None

    def _s3(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            connect, read = self._timeouts
            config = Config(connect_timeout=connect, read_timeout=read, retries={"max_attempts": 2, "mode": "standard"},
                            s3={"addressing_style": "path"} if self.prefix.endpoint_url else None)
            self._client = boto3.session.Session().client(
                "s3", region_name=self.prefix.region, endpoint_url=self.prefix.endpoint_url, config=config)
        return self._client

    def listing(self, after: str) -> Iterator[StoredObject]:
        """The prefix's objects past ``after``, in key order; raises :class:`StoreError`."""
        arguments = {"Bucket": self.prefix.bucket, "Prefix": self.prefix.prefix}
        if after:
            arguments["StartAfter"] = after
        with _store_errors(f"cannot list {self.prefix.url}", "s3:ListBucket on the bucket"):
            for page in self._s3().get_paginator("list_objects_v2").paginate(**arguments):
                for item in page.get("Contents", ()):
                    yield StoredObject(item["Key"], str(item["ETag"]).strip('"'), item["LastModified"].timestamp())

    def content(self, found: StoredObject) -> Iterator[bytes]:
        """The object's content, uncompressed when it is gzip (by its magic number), at most :data:`PIECE` bytes
        at a time; raises :class:`Gone`, :class:`StoreError`, and ``zlib.error`` or ``EOFError`` for a damaged
        gzip stream."""
        where = f"s3://{self.prefix.bucket}/{found.key}"
        with _store_errors(f"cannot read {where}", "s3:GetObject on the prefix"):
            from botocore.exceptions import ClientError

            try:
                body = self._s3().get_object(Bucket=self.prefix.bucket, Key=found.key, IfMatch=found.etag)["Body"]
            except ClientError as error:
                if _code(error) in ("NoSuchKey", "404"):
                    raise Gone(f"{where}: deleted since it was listed") from None
                if _code(error) in ("PreconditionFailed", "412"):
                    raise Gone(f"{where}: replaced since it was listed (another ETag)") from None
                raise
            try:
                rest = body.iter_chunks(PIECE)
                first = next(rest, b"")
                chunks = _chained(first, rest)
                yield from (_gunzip(chunks) if first[:2] == b"\x1f\x8b" else chunks)
            finally:
                body.close()

    def probe(self) -> str | None:
        """Why the prefix cannot be listed, or one of its objects read, now (None when it can); one short try."""
        checking = Bucket(self.prefix, 5.0, 5.0)
        try:
            first = next(checking.listing(""), None)
            if first is not None:
                with _store_errors(f"cannot read s3://{self.prefix.bucket}/{first.key}", "s3:GetObject on the prefix"):
                    checking._s3().head_object(Bucket=self.prefix.bucket, Key=first.key)
        except StoreError as error:
            return str(error)
        return None


def _chained(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def _gunzip(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The members of a gzip stream, uncompressed, at most :data:`PIECE` bytes at a time (a small object that
    inflates hugely is handed on in bounded pieces, not held whole)."""
    decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
    begun = False
    for chunk in chunks:
        data = chunk
        while data:
            begun = True
            out = decompressor.decompress(data, PIECE)
            if out:
                yield out
            if decompressor.eof:
                data = decompressor.unused_data
                decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
                begun = False
            else:
                data = decompressor.unconsumed_tail
    if begun:
        raise EOFError("the gzip stream ends before its end marker (a truncated object)")


def _code(error: Exception) -> str:
    """The error code of a botocore ``ClientError`` (``NoSuchKey``, ``AccessDenied``), or ''."""
    response = getattr(error, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


REFUSED = ("AccessDenied", "403", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch")
"""Error codes of a store that refuses these credentials."""


@contextmanager
def _store_errors(what: str, permission: str) -> Iterator[None]:
    """botocore's errors (and the socket's) as one :class:`StoreError` line naming what failed and, for a refusal,
    the permission it takes."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (BotoCoreError, ClientError, OSError) as error:
        code = _code(error)
        if code in REFUSED:
            raise StoreError(f"{what}: {code} (the sensor's credentials need {permission})") from None
        raise StoreError(f"{what}: {error}") from None
