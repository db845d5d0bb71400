"""Waiting for an event the test cannot await directly: poll a condition against a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest


def wait_for(condition: Callable[[], object], timeout: float, what: str = "the condition",
             interval: float = 0.05) -> None:
    """Poll ``condition`` until it holds; fail the test, naming ``what``, after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
