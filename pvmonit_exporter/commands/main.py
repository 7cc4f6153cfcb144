"""Command line: `run` (the daemon), `demo`, `simulate`, `read`, `hex`, `ble`, `check-config`, `queue`,
`control replay`. Their flags are in `parsers`; each command's code is imported only when it runs.

Every user error is one line on stderr and exit status 2 — never a traceback.
"""

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import IO

import yaml

from pvmonit_exporter.commands.findings import report
from pvmonit_exporter.commands.parsers import build_parser
from pvmonit_exporter.config import (
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
    return status if report("emoncms", check_emoncms(config.emoncms), out, err) else EXIT_USAGE


def _check_mqtt(config_file: str, config: Config, out: IO[str], err: IO[str]) -> int:
    if config.mqtt is None:
        raise UserError(f"{config_file}: --mqtt: no mqtt section to check")
    from pvmonit_exporter.commands.check_mqtt import announcement_lines, check_broker

    ok = report("mqtt", check_broker(config.mqtt), out, err)
    for line in announcement_lines(config):
        out.write(f"# mqtt: {line}\n")
    return 0 if ok else EXIT_USAGE


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


# The commands that read no configuration, each imported only when it runs.


def _simulate() -> int:
    from pvmonit_exporter.commands.simulate import simulate_command

    return simulate_command()


def _read(args: argparse.Namespace) -> int:
    from pvmonit_exporter.commands.read import read_command

    return read_command(args.source, args.style or "plain")


def _hex(args: argparse.Namespace) -> int:
    from pvmonit_exporter.commands.hex import hex_command

    return hex_command(args)


def _ble(args: argparse.Namespace) -> int:
    from pvmonit_exporter.commands.ble import run

    return run(args)


def _listen(address: str | None) -> str | None:
    if address is not None:
        parse_listen_address(address, lambda message: UserError(f"--web.listen-address: {message}"))
    return address


def _setup_logging(level: str) -> None:
    # journald stamps the time; a terminal user does not need it either.
    logging.basicConfig(level=level.upper(), format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.log_level)
    actions: dict[str | None, Callable[[], int]] = {
        "run": lambda: run_command(args.config_file, args.listen_address),
        "demo": lambda: demo_command(args.listen_address, args.mqtt_url),
        "simulate": _simulate,
        "read": lambda: _read(args),
        "hex": lambda: _hex(args),
        # The streams as they are now, not as they were at import: the tests run `main` in-process, captured.
        "check-config": lambda: check_config_command(args.config_file, ask_emoncms=args.emoncms,
                                                     ask_mqtt=args.mqtt, out=sys.stdout, err=sys.stderr),
        "queue": lambda: queue_command(args.config_file, flush=args.flush),
        "ble": lambda: _ble(args),
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
