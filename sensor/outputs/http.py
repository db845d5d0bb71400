"""The HTTP sink's transport: batches POSTed to Splunk HEC, Elasticsearch/OpenSearch ``_bulk`` or a webhook
over persistent connections (one aiohttp session per sink, created on the event loop that uses it).

What each answer means (docs/sinks.md says the same):

* 2xx: delivered -- except the items of a ``_bulk`` answer, judged one by one: 2xx delivered, 409 already
  there (``create`` with ``_id`` = ``event.id``: a duplicate, counted in ``t1046_sink_duplicates_total``),
  408/429/5xx sent again, any other status refused for good.
* 400, 413, 422: the receiver refuses what is in the batch. HEC names the first bad event
  (``invalid-event-number``): the events before it are indexed, it is refused, the rest are posted again. A
  batch refused as a whole is posted again one alert per request to find the alerts refused on their own.
  A refused alert goes to the dead-letter file; it never stalls the sink.
* 408, 429, 5xx (HEC's 503 "server is busy"), timeouts and connection errors: retried with backoff.
* Any other status (401/403 bad token, 404 wrong URL …): the receiver's setup is wrong, not the alert: the
  batch stays spooled and is retried until the operator fixes it, with a warning per attempt logged by the
  sink.
* HEC indexer acknowledgement: a token with ``useACK`` answers 400 code 10 ("Data channel is missing");
  from then on requests carry an ``X-Splunk-Request-Channel``, and a batch counts as delivered only when
  ``/services/collector/ack`` says its ``ackId`` is indexed. One not acknowledged within ``ACK_WAITS``
  timeouts is sent again (counted as re-sent).

It owns the request bodies and the reading of answers; the spool, retries and dead letters are the sink's.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import ssl
import urllib.parse
import uuid
from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson

from sensor.outputs.spool import SpoolRecord
from sensor.outputs.transport import DeliveryError, Outcome, Rejection
from sensor.text import visible

log = logging.getLogger(__name__)

RETRIED = frozenset({408, 429})
"""Statuses below 500 that mean "not now": sent again after a backoff."""
REFUSED = frozenset({400, 413, 422})
"""Statuses that mean "not this content": the alerts are refused for good."""
HEC_NO_CHANNEL = frozenset({10, 11})
"""HEC codes "Data channel is missing" and "Invalid data channel": the token has indexer acknowledgement on."""
ACK_WAITS = 3
"""HEC acknowledgement: how many ``timeout``s to wait for an ``ackId`` to be acknowledged before sending again."""
ACK_POLL_SECONDS = 0.5
"""HEC acknowledgement: how often to ask whether a batch is indexed."""


def hec_ack_url(url: str) -> str:
    """HEC's acknowledgement endpoint beside the event endpoint ``url``: ``…/services/collector/ack``."""
    parts = urllib.parse.urlsplit(url)
    collector = "/services/collector"
    base = parts.path[:parts.path.find(collector)] + collector if collector in parts.path else collector
    return urllib.parse.urlunsplit(parts._replace(path=base + "/ack", query=""))


def _host_port(parts: urllib.parse.SplitResult) -> str:
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{parts.port}" if parts.port is not None else host


def safe_url(url: str) -> str:
    """The URL as logs may show it: no user:password part, no query (where tokens hide)."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(netloc=_host_port(parts), query="…" if parts.query else ""))


def split_credentials(url: str, auth: str | None) -> tuple[str, str | None]:
    """The URL without credentials, and the Authorization value: the configured one, else Basic from the
    URL's user:password (a client may not send both)."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, auth
    bare = urllib.parse.urlunsplit(parts._replace(netloc=_host_port(parts)))
    if auth is not None:
        return bare, auth
    user = urllib.parse.unquote(parts.username or "")
    password = urllib.parse.unquote(parts.password or "")
    return bare, basic_auth(user, password)


def basic_auth(user: str, password: str) -> str:
    """The ``Authorization`` value of HTTP Basic authentication (RFC 7617)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class HttpTransport:
    """POSTs batches to Splunk HEC (``hec``), Elasticsearch/OpenSearch ``_bulk`` (``bulk``) or a webhook."""

    def __init__(self, url: str, kind: str, auth: str | None, index: str | None, sourcetype: str,
                 headers: Mapping[str, str], tls: ssl.SSLContext | None, timeout: float, observer: str) -> None:
        url, auth = split_credentials(url, auth)
        self.url = url
        self.kind = kind
        self._auth = auth
        self._index = index
        self._sourcetype = sourcetype
        self._headers = dict(headers)
        self._tls = tls
        self._timeout = timeout
        self._observer = observer
        self._session: aiohttp.ClientSession | None = None
        self._where = f"{kind} {safe_url(url)}"
        self._channel: str | None = None
        """The HEC channel, once the token turned out to want indexer acknowledgement."""
        self._ack_url = hec_ack_url(url)

    def __repr__(self) -> str:
        return f"HttpTransport({self._where!r})"

    def body(self, records: list[SpoolRecord]) -> tuple[bytes, str]:
        """The request body and content type for a batch."""
        if self.kind == "hec":
            parts = []
            for record in records:
                meta: dict[str, Any] = {"time": round(record.ts, 6), "host": self._observer,
                                        "source": "t1046-sensor", "sourcetype": self._sourcetype}
                if self._index:
                    meta["index"] = self._index
                parts.append(orjson.dumps(meta)[:-1] + b',"event":' + record.document + b"}")
            return b"\n".join(parts), "application/json"
        if self.kind == "bulk":
            lines = []
            for record in records:
                action: dict[str, Any] = {"_id": record.event_id}
                if self._index:
                    action["_index"] = self._index
                lines.append(orjson.dumps({"create": action}) + b"\n" + record.document + b"\n")
            return b"".join(lines), "application/x-ndjson"
        return b"[" + b",".join(record.document for record in records) + b"]", "application/json"

    async def send(self, records: list[SpoolRecord]) -> Outcome | None:
        rejected: list[Rejection] = []
        duplicates = 0
        remaining = list(records)
        new_channels = 0
        try:
            while remaining:
                body, content_type = self.body(remaining)
                status, answer = await self._request(self.url, body, content_type)
                if status == 400 and self.kind == "hec" and self._hec_code(answer) in HEC_NO_CHANNEL:
                    new_channels += 1
                    if new_channels > 1:
                        raise DeliveryError(f"{self._where}: HTTP 400 on a new channel: {_excerpt(answer)}")
                    self._channel = str(uuid.uuid4())
                    log.info("%s: the token wants indexer acknowledgement; using channel %s", self._where,
                             self._channel)
                    continue
                if 200 <= status < 300:
                    if self.kind == "hec" and self._channel is not None:
                        await self._acknowledged(answer)
                    if self.kind != "bulk":
                        remaining = []
                        break
                    done, retry, bulk_duplicates = self._bulk_items(remaining, answer)
                    rejected += done
                    duplicates += bulk_duplicates
                    if retry:
                        raise DeliveryError(f"{self._where}: {len(retry)} of {len(remaining)} items to retry",
                                            pending=retry)
                    remaining = []
                elif status in REFUSED:
                    remaining, found = await self._refused(remaining, status, answer, rejected)
                    duplicates += found
                else:
                    raise DeliveryError(f"{self._where}: HTTP {status}: {_excerpt(answer)}")
        except DeliveryError as error:
            pending = remaining if error.pending is None else error.pending
            raise DeliveryError(str(error), pending=pending, uncertain=error.uncertain,
                                settled=Outcome(tuple(rejected), duplicates)) from None
        return Outcome(tuple(rejected), duplicates)

    async def _refused(self, records: list[SpoolRecord], status: int, answer: bytes,
                       rejected: list[Rejection]) -> tuple[list[SpoolRecord], int]:
        """Handle a 400/413/422 for ``records``: refuse what the receiver named, or find it alert by alert;
        return the records still to post and the number found already there."""
        reason = f"HTTP {status}: {_excerpt(answer)}"
        bad = self._hec_invalid_event(answer) if self.kind == "hec" else None
        if bad is not None and bad < len(records):
            rejected.append(Rejection(records[bad], reason))
            return records[bad + 1:], 0
        if len(records) == 1:
            rejected.append(Rejection(records[0], reason))
            return [], 0
        duplicates = 0
        for index, record in enumerate(records):
            single_status, single_answer = await self._request(self.url, *self.body([record]))
            if single_status in REFUSED:
                rejected.append(Rejection(record, f"HTTP {single_status}: {_excerpt(single_answer)}"))
            elif not 200 <= single_status < 300:
                raise DeliveryError(f"{self._where}: HTTP {single_status}: {_excerpt(single_answer)}",
                                    pending=records[index:])
            elif self.kind == "bulk":
                done, retry, found = self._bulk_items([record], single_answer)
                rejected += done
                duplicates += found
                if retry:
                    raise DeliveryError(f"{self._where}: an item to retry", pending=records[index:])
        return [], duplicates

    async def _acknowledged(self, answer: bytes) -> None:
        """Wait until HEC says the batch that got ``answer`` is indexed; raise :class:`DeliveryError` (the
        batch may be there: uncertain) when it does not say so in time."""
        try:
            ack_id = orjson.loads(answer).get("ackId")
        except (orjson.JSONDecodeError, AttributeError):
            ack_id = None
        if not isinstance(ack_id, int):
            raise DeliveryError(f"{self._where}: no ackId in the answer: {_excerpt(answer)}", uncertain=True)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ACK_WAITS * self._timeout
        while True:
            status, acks = await self._request(self._ack_url, orjson.dumps({"acks": [ack_id]}), "application/json")
            if 200 <= status < 300:
                with contextlib.suppress(orjson.JSONDecodeError, AttributeError):
                    if orjson.loads(acks).get("acks", {}).get(str(ack_id)) is True:
                        return
            elif status not in RETRIED and status < 500:
                raise DeliveryError(f"{self._where}: ack {ack_id}: HTTP {status}: {_excerpt(acks)}", uncertain=True)
            if loop.time() > deadline:
                raise DeliveryError(f"{self._where}: ack {ack_id} not acknowledged within "
                                    f"{ACK_WAITS * self._timeout:g}s", uncertain=True)
            await asyncio.sleep(ACK_POLL_SECONDS)

    @staticmethod
    def _hec_code(answer: bytes) -> object:
        """HEC's ``code`` in an answer, if any."""
        with contextlib.suppress(orjson.JSONDecodeError, AttributeError):
            return orjson.loads(answer).get("code")
        return None

    @staticmethod
    def _hec_invalid_event(answer: bytes) -> int | None:
        """HEC's ``invalid-event-number``: the events before it were indexed."""
        with contextlib.suppress(orjson.JSONDecodeError):
            result = orjson.loads(answer)
            number = result.get("invalid-event-number") if isinstance(result, dict) else None
            if isinstance(number, int) and number >= 0:
                return number
        return None

    def _bulk_items(self, records: list[SpoolRecord],
                    answer: bytes) -> tuple[list[Rejection], list[SpoolRecord], int]:
        """A ``_bulk`` answer item by item: (refused for good, to retry, already there)."""
        try:
            result = orjson.loads(answer)
        except orjson.JSONDecodeError:
            raise DeliveryError(f"{self._where}: answer is not JSON", uncertain=True) from None
        if not isinstance(result, dict) or not result.get("errors"):
            return [], [], 0
        items = result.get("items")
        if not isinstance(items, list) or len(items) != len(records):
            raise DeliveryError(f"{self._where}: answer has no item per alert", uncertain=True)
        rejected: list[Rejection] = []
        retry: list[SpoolRecord] = []
        duplicates = 0
        for record, item in zip(records, items, strict=True):
            outcome: Any = next(iter(item.values()), {}) if isinstance(item, dict) and item else {}
            status = outcome.get("status") if isinstance(outcome, dict) else None
            if not isinstance(status, int):
                retry.append(record)
            elif status == 409:
                duplicates += 1
            elif status in RETRIED or status >= 500:
                retry.append(record)
            elif status >= 300:
                error = outcome.get("error")
                detail = orjson.dumps(error).decode()[:300] if error is not None else ""
                rejected.append(Rejection(record, f"_bulk item status {status}: {detail}"))
        return rejected, retry, duplicates

    async def _request(self, url: str, body: bytes, content_type: str) -> tuple[int, bytes]:
        """POST ``body`` on the kept connections; the status and answer, or :class:`DeliveryError`."""
        headers = {"Content-Type": content_type, "User-Agent": "t1046-sensor", **self._headers}
        if self._auth:
            headers["Authorization"] = self._auth
        if self._channel is not None:
            headers["X-Splunk-Request-Channel"] = self._channel
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=2, ssl=self._tls if self._tls is not None else True)
            self._session = aiohttp.ClientSession(connector=connector, raise_for_status=False,
                                                  timeout=aiohttp.ClientTimeout(total=self._timeout))
        try:
            async with self._session.post(url, data=body, headers=headers, allow_redirects=False) as response:
                return response.status, await response.read()
        except aiohttp.ClientConnectorError as error:
            raise DeliveryError(f"{self._where}: {error}") from None
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            raise DeliveryError(f"{self._where}: {error or type(error).__name__}", uncertain=True) from None

    def reopen(self) -> None:
        """Connections are kept open and replaced by the client as needed; nothing to do."""

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def _excerpt(answer: bytes) -> str:
    """The start of a receiver's answer, as text safe to log (its controls escaped)."""
    return visible(answer[:200].decode("utf-8", "replace"))
