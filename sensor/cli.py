"""The ``t1046-sensor`` command line."""

from __future__ import annotations

import argparse
import dataclasses
import gc
import logging
import os
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from sensor.config import FORMATS, SensorConfig, default_config, load_config, parse_ports
from sensor.errors import ConfigError, SensorError, UsageError
from sensor.replay import replay
from sensor.text import visible

log = logging.getLogger("sensor")
DAEMONS = ("run", "honeyports", "mdns")
"""Commands that log what they watch and where alerts go at start (INFO, shown unless ``-q``)."""
OK, UNREADABLE, BAD_CONFIGURATION, INTERRUPTED = 0, 1, 2, 130
"""The exit statuses (README, "Exit status"): done; an input could not be read or an output written (or a
sink did not take the test event, or nothing could listen); a bad configuration, usage or installation;
interrupted (Ctrl-C) before the command was done."""
GC_THRESHOLDS = (50_000, 20, 100)
"""Cyclic garbage collection for the commands that judge logs: the correlator makes many small objects and
few cycles, and Python's default first threshold (700) spent 0.5-0.9 us per record collecting them
(15 % of replay's CPU on the bench log; docs/performance.md)."""

def _verbosity(parser: argparse.ArgumentParser, default: str | None) -> None:
    """``-v``/``-q``, before or after the command (after it, the parent's value is kept unless given)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-v", "--verbose", action="store_const", const="verbose", dest="verbosity",
                       default=default if default is not None else argparse.SUPPRESS,
                       help="log diagnostics too (DEBUG), to stderr")
    group.add_argument("-q", "--quiet", action="store_const", const="quiet", dest="verbosity",
                       default=argparse.SUPPRESS, help="log only warnings and errors")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="t1046-sensor",
        description="Detect internal network service discovery (MITRE ATT&CK T1046): port scans, host sweeps "
                    "and mDNS service browsing, from Zeek logs, honeyports and an mDNS watcher. run, honeyports "
                    "and mdns log what they watch and where alerts go at start; the others log warnings only "
                    "unless -v.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {metadata.version('t1046-sensor')}")
    _verbosity(parser, "default")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    replay_cmd = commands.add_parser(
        "replay", help="read Zeek logs and print alerts as JSON lines",
        description="Read Zeek logs (files or directories; TSV or JSON; plain or .gz; conn, notice, dns, "
                    "t1046 and t1046_mdns logs, and dhcp, ntlm, kerberos and software logs for who the scanner "
                    "is) and write alerts as JSON lines to stdout. The logs' own timestamps are the clock, so "
                    "the output is deterministic. A one-line summary goes to stderr.")
    replay_cmd.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="Zeek log file or directory")
    replay_cmd.add_argument("--config", type=Path, metavar="FILE", help="YAML configuration (detection settings)")
    replay_cmd.add_argument("--format", choices=FORMATS, default="ecs",
                            help="alert format: ECS (default) or OCSF Detection Finding")
    replay_cmd.add_argument("--workers", type=_workers, default=None, metavar="N",
                            help="judge the records in N processes by source, with the same output, byte for "
                                 f"byte, as in one (default: this machine's cores, {os.cpu_count()}, for 64 MiB of "
                                 "logs or more, one process below; docs/performance.md says when more pay)")
    replay_cmd.add_argument("--engine", choices=("processes", "dask"), default="processes",
                            help="where the N parts run: processes of this machine (default), or Dask's distributed "
                                 "scheduler (a local cluster of N workers, or --scheduler's; needs the engine "
                                 "extra: pip install 't1046-sensor[engine]')")
    replay_cmd.add_argument("--scheduler", metavar="ADDRESS",
                            help="with --engine dask: a running cluster's scheduler (tcp://HOST:8786) instead of a "
                                 "local one")

    run_cmd = commands.add_parser(
        "run", help="the daemon: Zeek log follower, honeyports and mDNS watcher on one event loop",
        description="Run the daemon. With no --config it runs the embedded default (honeyports on loopback "
                    "high ports, alerts to stdout and to alerts.jsonl under the state directory).")
    run_cmd.add_argument("--config", type=Path, metavar="FILE", help="YAML configuration")

    honey_cmd = commands.add_parser(
        "honeyports", help="run only the honeyports; alerts to stdout and the configured sinks",
        description="Run only the honeyport listeners. Command-line options override the configuration.")
    honey_cmd.add_argument("--config", type=Path, metavar="FILE", help="YAML configuration")
    honey_cmd.add_argument("--listen", action="append", metavar="ADDR", help="address to listen on (repeatable)")
    honey_cmd.add_argument("--tcp", type=_port_list, metavar="PORTS", help="TCP ports, like 22,80,8000-8100")
    honey_cmd.add_argument("--udp", type=_port_list, metavar="PORTS", help="UDP ports, like 161,1900")

    mdns_cmd = commands.add_parser(
        "mdns", help="run only the mDNS watcher; alerts to stdout and the configured sinks",
        description="Watch mDNS (UDP 5353) on the given interfaces for DNS-SD service browsing.")
    mdns_cmd.add_argument("--config", type=Path, metavar="FILE", help="YAML configuration")
    mdns_cmd.add_argument("--interface", action="append", metavar="NAME", help="interface to watch (repeatable)")

    check_cmd = commands.add_parser(
        "check-config", help="validate a YAML configuration and what it points to",
        description="Validate a YAML configuration, listing every error with its path; then check what it points "
                    "to as `run` would at start (state directory, secrets, TLS files, node tokens, S3 prefixes: "
                    "listed once), binding and creating nothing. Exit status 2 when run would not start.")
    check_cmd.add_argument("file", type=Path, metavar="FILE")
    check_cmd.add_argument("--env-file", type=Path, metavar="FILE",
                           help="NAME=VALUE lines to check secrets with, as the service gets them "
                                "(systemd's EnvironmentFile, e.g. /etc/t1046-sensor/secrets.env)")
    check_cmd.add_argument("--content-only", action="store_true",
                           help="check the file's content only, not what it points to")
    check_cmd.add_argument("--user", metavar="NAME",
                           help="as root: read --env-file, then check FILE and what it points to as this user "
                                "(the service's, e.g. t1046) with its groups, so what it cannot read is found")
    _report_parser(commands)
    _add_test_alert(commands)
    for command in commands.choices.values():
        _verbosity(command, None)
    return parser


def _report_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report_cmd = commands.add_parser(
        "report", help="draw what each scanner did: one self-contained HTML file, optionally PNGs",
        description="Read Zeek logs (as replay does) and/or an alerts JSONL file (run's file sink, ECS) and "
                    "write one self-contained HTML file: a sortable summary of every incident, then per incident "
                    "the headline, a timeline and a target x port heat map of its probes (from conn.log), the "
                    "rules that fired and when, the evidence and the Zeek uids to pivot on. With an alerts file "
                    "the incidents are the file's; the logs then only supply the probes. Needs the report extra: "
                    "pip install 't1046-sensor[report]'.")
    report_cmd.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                            help="Zeek log file or directory, or an alerts JSONL file")
    report_cmd.add_argument("--scanner", action="append", metavar="IP", help="only this scanner's incidents "
                            "(repeatable)")
    report_cmd.add_argument("--out", type=Path, default=Path("report.html"), metavar="FILE",
                            help="the HTML file to write (default: report.html)")
    report_cmd.add_argument("--png", type=Path, metavar="DIR", help="also write one PNG per incident into DIR")
    report_cmd.add_argument("--config", type=Path, metavar="FILE", help="YAML configuration (detection settings)")
    report_cmd.add_argument("--workers", type=_workers, default=1, metavar="N",
                            help="judge the logs in N processes by source, as replay --workers does (the same "
                                 "incidents; an alerts file, such as replay's merged output, is read as it is)")


def _add_test_alert(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    test_cmd = commands.add_parser(
        "test-alert", help="send one marked test event to every configured sink and report each delivery",
        description="Send one clearly marked test event (event.kind: event, message and t1046.authorized.reason "
                    "saying it is a delivery test, documentation addresses 192.0.2.1 -> 192.0.2.2) to every "
                    "configured sink, with spools of its own, and print per sink whether it was delivered. "
                    "Exit status 1 when any sink did not deliver it.")
    test_cmd.add_argument("--config", type=Path, metavar="FILE", help="YAML configuration (its outputs)")
    test_cmd.add_argument("--timeout", type=float, default=15.0, metavar="SECONDS",
                          help="how long to wait for each sink (default 15)")


def _test_alert(path: Path | None, timeout: float) -> int:
    import asyncio

    from sensor.outputs.testalert import send_test_event

    reports = asyncio.run(send_test_event(_startup_config(path, "test-alert"), timeout))
    sys.stdout.flush()
    for report in reports:
        print(f"{report.sink}: {'OK' if report.delivered else 'FAILED'}: {report.detail}")  # noqa: T201
    return OK if all(report.delivered for report in reports) else UNREADABLE


def _check_config(path: Path, env_file: Path | None, content_only: bool, user: str | None) -> int:
    from sensor.preflight import become, preflight, read_env_file

    secrets = read_env_file(env_file) if env_file is not None and not content_only else {}
    if user is not None:
        try:
            become(user)
        except SensorError as error:
            _say(f"error: {error}")
            return BAD_CONFIGURATION
    config = load_config(path)
    if content_only:
        print(f"{path}: OK (content)")  # noqa: T201
        return 0
    os.environ.update(secrets)
    findings = preflight(config, reach=True)
    for finding in findings:
        print(f"{path}: {finding.line()}", file=sys.stderr)  # noqa: T201
    if env_file is None and any("environment variable" in finding.text for finding in findings):
        print(f"{path}: note: secrets were looked up in this shell's environment; give --env-file with the "  # noqa: T201
              "service's (e.g. /etc/t1046-sensor/secrets.env)", file=sys.stderr)
    if os.geteuid() == 0 and user is None:
        print(f"{path}: note: checked as root, who may read what the service cannot; give --user with the "  # noqa: T201
              "service's user (e.g. --user t1046)", file=sys.stderr)
    if any(finding.fatal for finding in findings):
        return BAD_CONFIGURATION
    print(f"{path}: OK")  # noqa: T201
    return OK


def _workers(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of workers (1 or more)")
    return count


def _port_list(text: str) -> tuple[int, ...]:
    try:
        return parse_ports(text, lowest=0)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _config(path: Path | None) -> SensorConfig:
    return load_config(path) if path is not None else default_config()


def _startup_config(path: Path | None, command: str, config: SensorConfig | None = None) -> SensorConfig:
    """The configuration of a command that starts sources or sinks (``config``, else read from ``path``);
    ``ConfigError`` with what it points to that the command would stop on, as ``check-config`` says it."""
    from sensor.preflight import startup_problems

    config = config if config is not None else _config(path)
    problems = startup_problems(config, command)
    if problems and path is None:
        raise ConfigError([f"the embedded default: {problem} (give --config FILE with a sensor.state_dir, "
                           "docs/configuration.md)" for problem in problems])
    if problems:
        raise ConfigError([f"{path}: {problem}" for problem in problems])
    return config


def _say(text: str) -> None:
    """One line to stderr, as every failure is told."""
    print(f"t1046-sensor: {text}", file=sys.stderr)  # noqa: T201


class _Levels(logging.Filter):
    """Lets this program's records through from ``own`` up and the libraries' from ``libraries`` up."""

    def __init__(self, own: int, libraries: int) -> None:
        super().__init__()
        self.own = own
        self.libraries = libraries

    def filter(self, record: logging.LogRecord) -> bool:
        ours = record.name.partition(".")[0] in ("sensor", "honeyports")
        return record.levelno >= (self.own if ours else self.libraries)


class _VisibleFormatter(logging.Formatter):
    """One line per record, whatever it quotes: a receiver's answer, a name from the network (its controls
    and bidirectional formatting characters escaped, :func:`sensor.text.visible`); tracebacks stay as they are."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return visible(super().formatMessage(record))


def _logging(verbosity: str, daemon: bool) -> None:
    """Diagnostics to stderr: a daemon's own at INFO (what it watches, where alerts go), other commands' and
    the libraries' at WARNING; ``-v``: this program's DEBUG and the libraries' INFO lines too; ``-q``:
    warnings and errors only. Nothing changes where logging is set up already (as ``basicConfig``)."""
    root = logging.getLogger()
    if root.handlers:
        return
    verbose = verbosity == "verbose"
    own = logging.DEBUG if verbose else logging.INFO if daemon and verbosity == "default" else logging.WARNING
    libraries = logging.INFO if verbose else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_VisibleFormatter("t1046-sensor: %(levelname)s: %(message)s"))
    handler.addFilter(_Levels(own, libraries))
    root.addHandler(handler)
    root.setLevel(min(own, libraries))


def _report(args: argparse.Namespace, quiet: bool) -> int:
    from sensor.report import INSTALL_HINT, matplotlib_cache, missing_dependency

    missing = missing_dependency()
    if missing is not None:
        raise UsageError(f"the report command needs {missing}, which is not installed: {INSTALL_HINT}")
    matplotlib_cache()
    from sensor.report.command import scanner_address, write_report

    try:
        scanners = [scanner_address(text) for text in args.scanner or ()]
    except ValueError as error:
        raise UsageError(f"--scanner: {error}") from None
    summary = write_report(args.paths, _config(args.config), args.out, args.png, scanners, args.workers)
    return _summarised(summary.line(), summary.unusable, quiet)


def _summarised(line: str, unusable: tuple[str, ...], quiet: bool) -> int:
    """Print a reading command's summary (unless ``quiet``) and an error line for each input it could not
    use at all; the exit status."""
    if not quiet:
        print(line, file=sys.stderr)  # noqa: T201 - the summary is this command's output
    for problem in unusable:
        _say(f"error: {problem}")
    return UNREADABLE if unusable else OK


def _honeyports(args: argparse.Namespace) -> int:
    from sensor.daemon.honeyports import run_honeyports

    config = _config(args.config)
    honey = dataclasses.replace(
        config.honeyports,
        listen=tuple(args.listen) if args.listen else config.honeyports.listen or ("127.0.0.1",),
        tcp=args.tcp if args.tcp is not None else config.honeyports.tcp,
        udp=args.udp if args.udp is not None else config.honeyports.udp,
    )
    return run_honeyports(_startup_config(args.config, "honeyports", dataclasses.replace(config, honeyports=honey)))


def _mdns(args: argparse.Namespace) -> int:
    from sensor.daemon.mdns import run_mdns

    config = _config(args.config)
    interfaces = tuple(args.interface) if args.interface else config.mdns.interfaces
    if not interfaces:
        raise UsageError("mdns: no interface to watch (give --interface NAME, or mdns.interfaces in --config)")
    config = dataclasses.replace(config, mdns=dataclasses.replace(config.mdns, interfaces=interfaces))
    return run_mdns(_startup_config(args.config, "mdns", config))


def _command(args: argparse.Namespace) -> int:
    quiet = args.verbosity == "quiet"
    if args.command == "replay":
        if args.scheduler is not None and args.engine != "dask":
            raise UsageError("--scheduler is a Dask cluster's: give --engine dask with it")
        config = _config(args.config)
        summary = replay(args.paths, config, sys.stdout.buffer, args.format,
                         progress=sys.stderr if sys.stderr.isatty() and not quiet else None, workers=args.workers,
                         engine=args.engine, scheduler=args.scheduler)
        sys.stdout.flush()
        return _summarised(summary.line(), summary.unusable, quiet)
    if args.command == "run":
        from sensor.daemon.process import run_daemon

        return run_daemon(_startup_config(args.config, "run"), config_path=args.config)
    if args.command == "honeyports":
        return _honeyports(args)
    if args.command == "mdns":
        return _mdns(args)
    if args.command == "check-config":
        return _check_config(args.file, args.env_file, args.content_only, args.user)
    if args.command == "report":
        return _report(args, quiet)
    return _test_alert(args.config, args.timeout)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``t1046-sensor`` console script: every failure the commands expect is one line on
    stderr and its exit status (:data:`OK`, :data:`UNREADABLE`, :data:`BAD_CONFIGURATION`, :data:`INTERRUPTED`)."""
    args = _parser().parse_args(argv)
    _logging(args.verbosity, args.command in DAEMONS)
    if args.command in ("replay", "run", "report"):
        gc.set_threshold(*GC_THRESHOLDS)
    try:
        return _command(args)
    except ConfigError as error:
        _say(str(error))
        return BAD_CONFIGURATION
    except UsageError as error:
        _say(f"error: {error}")
        return BAD_CONFIGURATION
    except SensorError as error:
        _say(f"error: {error}")
        return UNREADABLE
    except KeyboardInterrupt:
        _say(f"{args.command}: interrupted")
        return INTERRUPTED
    except BrokenPipeError:
        return OK
