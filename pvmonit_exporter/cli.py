"""Command line: `run` (the daemon), `demo`, `read`, `hex`, `ble`, `check-config`, `queue`.

Flags follow Prometheus exporters (`--config.file`, `--web.listen-address`, `--log.level`). Every user error
is one line on stderr and exit status 2 — never a traceback.
"""

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import IO

import yaml

from pvmonit_exporter import __version__, hex_command
from pvmonit_exporter.ble import cli as ble_cli
from pvmonit_exporter.config import (
    DEFAULT_LISTEN_ADDRESS,
    effective_config,
    load_config,
    parse_listen_address,
)
from pvmonit_exporter.errors import UserError
from pvmonit_exporter.read_command import read_command

EXIT_USAGE = 2

log = logging.getLogger("pvmonit_exporter")


# --- commands that read a configuration ---------------------------------------------------------------


def check_config_command(config_file: str, *, ask_emoncms: bool = False, out: IO[str] = sys.stdout,
                         err: IO[str] = sys.stderr) -> int:
    # The key is not needed to check the file: with LoadCredential= it exists only inside the running service.
    config = load_config(config_file, key_required=False)
    for warning in config.warnings:
        err.write(f"pvmonit-exporter: WARNING: {warning}\n")
    out.write(f"# {config_file}: valid\n")
    out.write(yaml.safe_dump(effective_config(config), sort_keys=False, allow_unicode=True))
    if not ask_emoncms:
        return 0
    from pvmonit_exporter.forwarder.check import check_emoncms

    if config.emoncms is None:
        raise UserError(f"{config_file}: --emoncms: no emoncms section to check")
    if not config.emoncms.apikey:
        raise UserError(f"{config_file}: --emoncms: cannot ask emoncms without the key (see the warning above)")
    findings = check_emoncms(config.emoncms)
    for finding in findings:
        if finding.ok:
            out.write(f"# emoncms: {finding.text}\n")
        else:
            err.write(f"pvmonit-exporter: emoncms: {finding.text}\n")
    return 0 if all(finding.ok for finding in findings) else EXIT_USAGE


def run_command(config_file: str, listen_address: str | None) -> int:
    from pvmonit_exporter.app import run_exporter

    config = load_config(config_file)
    return run_exporter(config, _listen(listen_address), config_file)


def demo_command(listen_address: str | None) -> int:
    from pvmonit_exporter.app import run_demo

    return run_demo(_listen(listen_address))


def queue_command(config_file: str, *, flush: bool) -> int:
    from pvmonit_exporter.forwarder.cli import queue_command as run

    # Showing the queue never needs the key (absent while a LoadCredential= service is stopped); sending does.
    config = load_config(config_file, key_required=flush)
    return run(config, flush=flush)


def _listen(address: str | None) -> str | None:
    if address is not None:
        parse_listen_address(address, lambda message: UserError(f"--web.listen-address: {message}"))
    return address


# --- parser --------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pvmonit-exporter",
        description="Victron VE.Direct → Prometheus exporter with a durable emoncms forwarder.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--log.level", dest="log_level", default="info",
                        choices=("debug", "info", "warning", "error"), help="logging threshold (default info)")
    parser.add_argument("--config.file", dest="config_file", help="configuration file (YAML); same as `run`")
    parser.add_argument("--web.listen-address", dest="listen_address",
                        help=f"HOST:PORT to serve on (default {DEFAULT_LISTEN_ADDRESS}, or web.listen_address)")
    # --log.level is accepted after the command too; SUPPRESS keeps the top-level value when it is absent.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--log.level", dest="log_level", default=argparse.SUPPRESS,
                        choices=("debug", "info", "warning", "error"), help="logging threshold (default info)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    # Flags given after the command override those before it; SUPPRESS keeps the earlier value when absent.
    config_file = argparse.ArgumentParser(add_help=False)
    config_file.add_argument("--config.file", dest="config_file", default=argparse.SUPPRESS,
                             help="configuration file (YAML)")
    listen = argparse.ArgumentParser(add_help=False)
    listen.add_argument("--web.listen-address", dest="listen_address", default=argparse.SUPPRESS,
                        help="HOST:PORT to serve on")

    commands.add_parser("run", parents=[common, config_file, listen], help="run the exporter (the daemon)")

    commands.add_parser("demo", parents=[common, listen],
                        help="run the exporter on simulated devices (no hardware, no config)")

    read = commands.add_parser("read", parents=[common],
                               help="decode a serial port or a recording and print its blocks")
    read.add_argument("source", metavar="SOURCE",
                      help="serial port (/dev/ttyUSB0), socket://HOST:PORT, rfc2217://HOST:PORT or a recorded file")
    style = read.add_mutually_exclusive_group()
    style.add_argument("--json", dest="style", action="store_const", const="json",
                       help="one JSON object per valid block, raw values as sent")
    style.add_argument("--decoded", dest="style", action="store_const", const="decoded",
                       help="values as the live page shows them (V, A, W, kWh, Ah, %%, h min) and names for states")

    hex_command.add_parser(commands, [common])

    check_config = commands.add_parser("check-config", parents=[common, config_file],
                                       help="validate a configuration and print it with defaults")
    check_config.add_argument("--emoncms", action="store_true",
                              help="also ask emoncms, writing nothing, whether the URL answers and the key may write")

    queue = commands.add_parser("queue", parents=[common, config_file],
                                help="show the emoncms queue, or --flush it now")
    queue.add_argument("--flush", action="store_true", help="send everything now; exit 0 only when empty")

    ble_cli.register(commands, [common], config_file)
    return parser


def _setup_logging(level: str) -> None:
    # journald stamps the time; a terminal user does not need it either.
    logging.basicConfig(level=level.upper(), format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    _setup_logging(args.log_level)
    actions: dict[str | None, Callable[[], int]] = {
        "run": lambda: run_command(args.config_file, args.listen_address),
        "demo": lambda: demo_command(args.listen_address),
        "read": lambda: read_command(args.source, args.style or "plain"),
        "hex": lambda: hex_command.hex_command(args),
        # The streams as they are now, not as they were at import: the tests run `main` in-process, captured.
        "check-config": lambda: check_config_command(args.config_file, ask_emoncms=args.emoncms, out=sys.stdout,
                                                     err=sys.stderr),
        "queue": lambda: queue_command(args.config_file, flush=args.flush),
        "ble": lambda: ble_cli.run(args),
    }
    if args.command is None:
        if not args.config_file:
            parser.print_usage(sys.stderr)
            sys.stderr.write("pvmonit-exporter: error: give a COMMAND, or --config.file to run the exporter\n")
            return EXIT_USAGE
        args.command = "run"
    if args.command in ("run", "check-config", "queue") and not args.config_file:
        parser.error(f"{args.command} needs --config.file")
    try:
        return actions[args.command]()
    except UserError as exc:
        sys.stderr.write(f"pvmonit-exporter: {exc}\n")
        return EXIT_USAGE
    except BrokenPipeError:
        # `read … | head`: the reader went away; not an error worth a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        return 130
