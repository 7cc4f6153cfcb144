"""Command line: `run` (the daemon), `demo`, `simulate`, `read`, `hex`, `ble`, `check-config`, `queue`,
`control replay`.

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

from pvmonit_exporter import __version__
from pvmonit_exporter.commands import ble as ble_cli
from pvmonit_exporter.commands import hex as hex_command
from pvmonit_exporter.commands import simulate as simulate_command
from pvmonit_exporter.commands.read import read_command
from pvmonit_exporter.config import (
    DEFAULT_LISTEN_ADDRESS,
    Config,
    MqttConfig,
    effective_config,
    load_config,
    parse_listen_address,
    parse_mqtt_url,
)
from pvmonit_exporter.errors import UserError

EXIT_USAGE = 2

log = logging.getLogger("pvmonit_exporter")


# --- commands that read a configuration ---------------------------------------------------------------


def check_config_command(config_file: str, *, ask_emoncms: bool = False, ask_mqtt: bool = False,
                         out: IO[str] = sys.stdout, err: IO[str] = sys.stderr) -> int:
    # The key is not needed to check the file: with LoadCredential= it exists only inside the running service.
    config = load_config(config_file, key_required=False)
    for warning in config.warnings:
        err.write(f"pvmonit-exporter: WARNING: {warning}\n")
    out.write(f"# {config_file}: valid\n")
    out.write(yaml.safe_dump(effective_config(config), sort_keys=False, allow_unicode=True))
    status = 0
    if ask_mqtt:
        status = _check_mqtt(config_file, config, out, err)
    if not ask_emoncms:
        return status
    from pvmonit_exporter.commands.check_emoncms import check_emoncms

    if config.emoncms is None:
        raise UserError(f"{config_file}: --emoncms: no emoncms section to check")
    if config.emoncms.via == "mqtt":
        out.write("# emoncms: via mqtt: the rows go to the mqtt broker (check it with --mqtt)\n")
        return status
    if not config.emoncms.apikey:
        raise UserError(f"{config_file}: --emoncms: cannot ask emoncms without the key (see the warning above)")
    findings = check_emoncms(config.emoncms)
    for finding in findings:
        if finding.ok:
            out.write(f"# emoncms: {finding.text}\n")
        else:
            err.write(f"pvmonit-exporter: emoncms: {finding.text}\n")
    return status if all(finding.ok for finding in findings) else EXIT_USAGE


def _check_mqtt(config_file: str, config: Config, out: IO[str], err: IO[str]) -> int:
    if config.mqtt is None:
        raise UserError(f"{config_file}: --mqtt: no mqtt section to check")
    from pvmonit_exporter.commands.check_mqtt import announcement_lines, check_broker

    findings = check_broker(config.mqtt)
    for finding in findings:
        if finding.ok:
            out.write(f"# mqtt: {finding.text}\n")
        else:
            err.write(f"pvmonit-exporter: mqtt: {finding.text}\n")
    for line in announcement_lines(config):
        out.write(f"# mqtt: {line}\n")
    return 0 if all(finding.ok for finding in findings) else EXIT_USAGE


def run_command(config_file: str, listen_address: str | None) -> int:
    from pvmonit_exporter.daemon import run_exporter

    config = load_config(config_file)
    return run_exporter(config, _listen(listen_address), config_file)


def demo_command(listen_address: str | None, mqtt_url: str | None = None) -> int:
    from pvmonit_exporter.daemon import run_demo

    mqtt = None
    if mqtt_url is not None:
        try:
            host, port, tls = parse_mqtt_url(mqtt_url)
        except ValueError as exc:
            raise UserError(f"--mqtt: {exc}") from None
        mqtt = MqttConfig(host=host, port=port, tls=tls, client_id="pvmonit-demo", topic_prefix="pvmonit-demo")
    return run_demo(_listen(listen_address), mqtt)


def queue_command(config_file: str, *, flush: bool) -> int:
    from pvmonit_exporter.commands.queue import queue_command as run

    # Showing the queue never needs the key (absent while a LoadCredential= service is stopped); sending does.
    config = load_config(config_file, key_required=flush)
    return run(config, flush=flush)


def control_command(args: argparse.Namespace) -> int:
    """`control replay`: the rules of a configuration on a CSV of inputs."""
    from pvmonit_exporter.control.replay import replay_command

    config = load_config(args.config_file, key_required=False)
    if not config.actuators:
        raise UserError(f"{args.config_file}: no actuators and no rules to replay")
    return replay_command(config, args.inputs, sys.stdout, sys.stderr)


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

    demo = commands.add_parser("demo", parents=[common, listen],
                               help="run the exporter on simulated devices (no hardware, no config)")
    demo.add_argument("--mqtt", metavar="URL", dest="mqtt_url",
                      help="also publish the demo's devices to this broker (mqtt://HOST[:PORT]), with Home "
                           "Assistant discovery, under the prefix pvmonit-demo")

    simulate_command.add_parser(commands, [common])

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
    check_config.add_argument("--mqtt", action="store_true",
                              help="also connect to the MQTT broker, check that it lets us publish under the prefix, "
                                   "and list the entities Home Assistant would be told about")

    queue = commands.add_parser("queue", parents=[common, config_file],
                                help="show the emoncms queue, or --flush it now")
    queue.add_argument("--flush", action="store_true", help="send everything now; exit 0 only when empty")

    ble_cli.register(commands, [common], config_file)

    control = commands.add_parser("control", parents=[common], help="switching loads: try the rules")
    control_commands = control.add_subparsers(dest="control_command", metavar="ACTION", required=True)
    replay = control_commands.add_parser("replay", parents=[common, config_file],
                                         help="replay a CSV of inputs through the rules; print each decision as "
                                              "an audit JSON line")
    replay.add_argument("--inputs", required=True, metavar="CSV",
                        help="a `time` column (Unix seconds or ISO 8601), then one column per rule value")
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
        "demo": lambda: demo_command(args.listen_address, args.mqtt_url),
        "simulate": simulate_command.simulate_command,
        "read": lambda: read_command(args.source, args.style or "plain"),
        "hex": lambda: hex_command.hex_command(args),
        # The streams as they are now, not as they were at import: the tests run `main` in-process, captured.
        "check-config": lambda: check_config_command(args.config_file, ask_emoncms=args.emoncms,
                                                     ask_mqtt=args.mqtt, out=sys.stdout, err=sys.stderr),
        "queue": lambda: queue_command(args.config_file, flush=args.flush),
        "ble": lambda: ble_cli.run(args),
        "control": lambda: control_command(args),
    }
    if args.command is None:
        if not args.config_file:
            parser.print_usage(sys.stderr)
            sys.stderr.write("pvmonit-exporter: error: give a COMMAND, or --config.file to run the exporter\n")
            return EXIT_USAGE
        args.command = "run"
    if args.command in ("run", "check-config", "queue", "control") and not args.config_file:
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
