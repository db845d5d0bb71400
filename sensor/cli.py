"""The ``t1046-sensor`` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from sensor.config import SensorConfig, default_config, load_config
from sensor.errors import ConfigError, SensorError
from sensor.replay import replay

log = logging.getLogger("sensor")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="t1046-sensor",
        description="Detect internal network service discovery (MITRE ATT&CK T1046): port scans, host sweeps "
                    "and mDNS service browsing, from Zeek logs, honeyports and an mDNS watcher.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log diagnostics (to stderr)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    replay_cmd = commands.add_parser(
        "replay", help="read Zeek logs and print alerts as JSON lines",
        description="Read Zeek logs (files or directories; TSV or JSON; plain or .gz; conn, notice, dns and "
                    "t1046 logs) and write alerts as JSON lines to stdout. The logs' own timestamps are the "
                    "clock, so the output is deterministic. A one-line summary goes to stderr.")
    replay_cmd.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="Zeek log file or directory")
    replay_cmd.add_argument("--config", type=Path, metavar="FILE", help="YAML configuration (detection settings)")
    replay_cmd.add_argument("--format", choices=("ecs", "ocsf"), default="ecs",
                            help="alert format: ECS (default) or OCSF Detection Finding")

    check_cmd = commands.add_parser("check-config", help="validate a YAML configuration",
                                    description="Validate a YAML configuration; list every error with its path.")
    check_cmd.add_argument("file", type=Path, metavar="FILE")
    return parser


def _config(path: Path | None) -> SensorConfig:
    return load_config(path) if path is not None else default_config()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``t1046-sensor`` console script."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="t1046-sensor: %(levelname)s: %(message)s", stream=sys.stderr)
    try:
        if args.command == "replay":
            config = _config(args.config)
            summary = replay(args.paths, config, sys.stdout.buffer, args.format,
                             progress=sys.stderr if sys.stderr.isatty() else None)
            sys.stdout.flush()
            print(summary.line(), file=sys.stderr)  # noqa: T201 - the summary is this command's output
            return 0
        if args.command == "check-config":
            load_config(args.file)
            print(f"{args.file}: OK")  # noqa: T201
            return 0
    except ConfigError as error:
        print(f"t1046-sensor: {error}", file=sys.stderr)  # noqa: T201
        return 2
    except SensorError as error:
        print(f"t1046-sensor: error: {error}", file=sys.stderr)  # noqa: T201
        return 1
    except BrokenPipeError:
        return 0
    return 2
