"""Fixtures of the output tests: real alerts (many distinct ones for streams), an event loop in a thread of
its own for sinks while the test thread waits on receivers, and the shared TLS certificates."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from sensor.alerts.alert import Alert
from sensor.config import OutputConfig, SensorConfig
from sensor.metrics import Metrics
from tests.daemon.conftest import Certificates, certificates, real_alerts

__all__ = ["Certificates", "Loop", "certificates", "config_with", "distinct_alerts", "metric", "real_alerts"]

T = TypeVar("T")


def config_with(tmp_path: Path, *outputs: OutputConfig) -> SensorConfig:
    return SensorConfig(name="sensor-test", state_dir=tmp_path / "state", outputs=outputs)


def distinct_alerts(alerts: list[Alert], count: int) -> list[Alert]:
    """``count`` alerts with distinct ``event.id``s, made from real ones (each a real alert's content)."""
    return [dataclasses.replace(alerts[index % len(alerts)], incident_id=f"{index + 1:024x}") for index in range(count)]


def metric(metrics: Metrics, name: str, sink: str) -> float:
    return metrics.registry.get_sample_value(name, {"sink": sink}) or 0.0


class Loop:
    """An asyncio event loop running in its own thread: sinks live there while the test waits for receivers."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="sink-loop", daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def call(self, function: Callable[[], T]) -> T:
        async def call() -> T:
            return function()
        return self.run(call())

    def close(self) -> None:
        async def cancel_the_rest() -> None:
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.run(cancel_the_rest())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(30)
        self.loop.close()


@pytest.fixture
def loop() -> Iterator[Loop]:
    running = Loop()
    yield running
    running.close()
