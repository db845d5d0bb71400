"""Waiting for an event the test cannot await directly: poll a condition against a deadline (from a test, or
inside its event loop); a port a process reports it bound."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest


def wait_for(condition: Callable[[], object], timeout: float, what: str = "the condition",
             interval: float = 0.05) -> None:
    """Poll ``condition`` until it holds; fail the test, naming ``what``, after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


async def wait_for_async(condition: Callable[[], object], timeout: float, what: str = "the condition",
                         interval: float = 0.01) -> None:
    """:func:`wait_for` inside a running event loop: the loop goes on while the condition is polled."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(interval)


def reported_port(log: Path, timeout: float, transport: str = "tcp", address: str = "127.0.0.1",
                  skip: int = 0) -> int:
    """The port a honeyport listener asked for port 0 got, as the process logged it
    (``honeyport listening on 127.0.0.1:40123/tcp``; of several, ``honeyports listening on
    127.0.0.1:2222,2323/tcp (2 ports)``, the first); ``skip`` passes over that many earlier reports of the
    same address and transport (listeners opened again on a reload)."""
    pattern = re.compile(rf"honeyports? listening on {re.escape(address)}:(\d+)[\d,-]*/{transport}\b")

    def ports() -> list[int]:
        return [int(port) for port in pattern.findall(log.read_text(errors="replace"))] if log.exists() else []

    wait_for(lambda: len(ports()) > skip, timeout, f"a {transport} port on {address} reported in {log}")
    return ports()[skip]
