"""SIGHUP for the running daemon: file sinks reopened, the configuration file read again and what can change
while running applied (outputs, after checking them; honeyports and the mDNS watcher, restarted); the rest
is warned about and waits for the next start. A broken file keeps the running configuration."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from sensor.config import SensorConfig, load_config
from sensor.daemon.sources import LocalSources
from sensor.errors import ConfigError
from sensor.metrics import Metrics
from sensor.outputs.build import build_sinks, check_outputs
from sensor.outputs.settings import SinkConfigError
from sensor.outputs.sink import SpooledSink, drain_all

log = logging.getLogger(__name__)


class Reloadable(Protocol):
    """What a reload changes of the running daemon (:class:`sensor.daemon.run.Daemon`)."""

    config: SensorConfig
    config_path: Path | None
    metrics: Metrics
    sinks: list[SpooledSink]
    sources: LocalSources

    def start_sources(self, config: SensorConfig) -> LocalSources:
        """Start the honeyports and the mDNS watcher ``config`` asks for."""

    async def commit_wait(self) -> None:
        """Commit what there is now and wait until it is durable."""

    def seq_past_spools(self) -> None:
        """Number the next commits past anything the (new) sinks' spools took."""


async def apply_reload(daemon: Reloadable) -> None:
    """SIGHUP: reopen file sinks; with a configuration file, reload it when it is valid (outputs, honeyports
    and mDNS take effect now, the rest at the next start), keeping the running configuration when it is not."""
    for sink in daemon.sinks:
        sink.reopen()
    log.info("SIGHUP: file sinks reopened")
    if daemon.config_path is None:
        return
    try:
        new = load_config(daemon.config_path)
    except ConfigError as error:
        log.error("SIGHUP: %s; keeping the running configuration", error)
        return
    for section in ("name", "state_dir", "zeek", "detection", "nodes", "node", "flows"):
        if getattr(new, section) != getattr(daemon.config, section):
            log.warning("SIGHUP: %s changed; that takes effect at the next start", section)
    outputs = daemon.config.outputs
    if new.outputs != daemon.config.outputs and await replace_sinks(daemon, new):
        outputs = new.outputs
    if new.honeyports != daemon.config.honeyports or new.mdns != daemon.config.mdns:
        await daemon.sources.stop()
        daemon.sources = daemon.start_sources(new)
        await daemon.sources.run_mdns()
    daemon.config = replace(daemon.config, honeyports=new.honeyports, mdns=new.mdns, outputs=outputs)
    log.info("SIGHUP: configuration %s reloaded", daemon.config_path)


async def replace_sinks(daemon: Reloadable, new: SensorConfig) -> bool:
    """Drain the running sinks (what they keep stays spooled) and build the new ones; False, with the
    running sinks untouched, when the new outputs are invalid."""
    try:
        check_outputs(daemon.config, new.outputs)
    except SinkConfigError as error:
        log.error("SIGHUP: %s; keeping the running outputs", error)
        return False
    await daemon.commit_wait()
    await drain_all(daemon.sinks, 2.0)
    replaced = True
    try:
        daemon.sinks = build_sinks(replace(daemon.config, outputs=new.outputs), metrics=daemon.metrics)
    except SinkConfigError as error:
        log.error("SIGHUP: %s; keeping the running outputs", error)
        daemon.sinks = build_sinks(daemon.config, metrics=daemon.metrics)
        replaced = False
    daemon.seq_past_spools()
    for sink in daemon.sinks:
        sink.start()
    return replaced
