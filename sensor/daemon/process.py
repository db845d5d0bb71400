"""The ``run`` process: the state-directory lock, the metrics endpoint, the asyncio loop with Twisted's
reactor on it, and the daemon's exit status. Everything the daemon does lives in :mod:`sensor.daemon.run`."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from honeyports.service import asyncio_reactor
from sensor.config import SensorConfig
from sensor.daemon.run import Daemon
from sensor.files import UnsafeDirectoryError, check_private_directory, open_append
from sensor.metrics import Metrics, MetricsServer

log = logging.getLogger(__name__)


def _lock_state_dir(state_dir: Path) -> IO[bytes] | None:
    """Hold ``state_dir/daemon.lock`` for the life of the process; None when another daemon holds it. Raise
    :class:`~sensor.files.UnsafeDirectoryError` when another user could write to the directory."""
    check_private_directory(state_dir)
    lock = os.fdopen(open_append(state_dir / "daemon.lock"), "ab")
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        return None
    return lock


def run_daemon(config: SensorConfig, config_path: Path | None = None) -> int:
    """Run the daemon until SIGTERM/SIGINT; return the exit status.

    ``config_path`` is read again on SIGHUP; ``sensor.metrics_listen`` (address, port) serves Prometheus metrics.
    """
    metrics_listen = config.metrics_listen
    try:
        lock = _lock_state_dir(config.state_dir)
    except UnsafeDirectoryError as error:
        log.error("%s", error)
        return 2
    except OSError as error:
        log.error("sensor.state_dir: %s: cannot use it: %s", config.state_dir, error.strerror or error)
        return 2
    if lock is None:
        log.error("another t1046-sensor daemon is using %s", config.state_dir)
        return 1
    metrics = Metrics()
    server: MetricsServer | None = None
    if metrics_listen is not None:
        try:
            server = MetricsServer(metrics, *metrics_listen)
        except OSError as error:
            log.error("cannot serve metrics on %s:%d: %s", *metrics_listen, error)
            lock.close()
            return 1
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        reactor = asyncio_reactor(loop)
        daemon = Daemon(config, config_path, metrics, reactor)
        return _run_on_reactor(reactor, loop, daemon.run)
    finally:
        if server is not None:
            server.close()
        lock.close()


def _run_on_reactor(reactor: Any, loop: asyncio.AbstractEventLoop, main: Callable[[], Any]) -> int:
    status: list[int] = []

    def finished(task: asyncio.Task[int]) -> None:
        if task.cancelled():
            status.append(1)
        elif task.exception() is not None:
            log.error("daemon failed", exc_info=task.exception())
            status.append(1)
        else:
            status.append(task.result())
        reactor.stop()

    def start() -> None:
        loop.create_task(main()).add_done_callback(finished)

    reactor.callWhenRunning(start)
    reactor.run(installSignalHandlers=False)
    return status[0] if status else 1
