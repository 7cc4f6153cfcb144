"""Every command's flags, in one place; the commands themselves are imported by `main` only when they run, so
that the daemon (`run`) loads none of the others' code.

Flags follow Prometheus exporters (`--config.file`, `--web.listen-address`, `--log.level`).
"""

import argparse
from collections.abc import Sequence

from pvmonit_exporter import __version__
from pvmonit_exporter.config import DEFAULT_LISTEN_ADDRESS

DEFAULT_SCAN_SECONDS = 10.0


def build_parser() -> argparse.ArgumentParser:
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

    commands.add_parser("simulate", parents=[common],
                        help="start the demo's simulated devices without the exporter, to try read, hex and "
                             "ble decode on")

    read = commands.add_parser("read", parents=[common],
                               help="decode a serial port or a recording and print its blocks")
    read.add_argument("source", metavar="SOURCE",
                      help="serial port (/dev/ttyUSB0), socket://HOST:PORT, rfc2217://HOST:PORT or a recorded file")
    style = read.add_mutually_exclusive_group()
    style.add_argument("--json", dest="style", action="store_const", const="json",
                       help="one JSON object per valid block, raw values as sent")
    style.add_argument("--decoded", dest="style", action="store_const", const="decoded",
                       help="values as the live page shows them (V, A, W, kWh, Ah, %%, h min) and names for states")

    _hex(commands, [common])

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

    _ble(commands, [common], config_file)

    control = commands.add_parser("control", parents=[common], help="switching loads: try the rules")
    control_commands = control.add_subparsers(dest="control_command", metavar="ACTION", required=True)
    replay = control_commands.add_parser("replay", parents=[common, config_file],
                                         help="replay a CSV of inputs through the rules; print each decision as "
                                              "an audit JSON line")
    replay.add_argument("--inputs", required=True, metavar="CSV",
                        help="a `time` column (Unix seconds or ISO 8601), then one column per rule value")
    return parser


def _hex(commands: "argparse._SubParsersAction[argparse.ArgumentParser]",
         parents: Sequence[argparse.ArgumentParser]) -> None:
    hex_parser = commands.add_parser("hex", parents=list(parents),
                                     help="read a device over the VE.Direct HEX protocol (read-only)")
    hex_parser.add_argument("port", metavar="PORT",
                            help="serial port of the device, or socket://HOST:PORT or rfc2217://HOST:PORT")
    actions = hex_parser.add_subparsers(dest="hex_action", metavar="ACTION", required=True)
    actions.add_parser("ping", help="print the device's firmware version")
    get_parser = actions.add_parser("get", help="print registers, by hex id (0xEDF0) or name")
    get_parser.add_argument("registers", metavar="REG", nargs="+")
    get_parser.add_argument("--json", action="store_true", help="one JSON object per register")
    history_parser = actions.add_parser("history", help="print the charger's daily history, newest first")
    history_parser.add_argument("--json", action="store_true", help="one JSON object per day")


def _ble(commands: "argparse._SubParsersAction[argparse.ArgumentParser]",
         parents: Sequence[argparse.ArgumentParser], config_file: argparse.ArgumentParser) -> None:
    ble = commands.add_parser("ble", parents=list(parents), help="Bluetooth (Instant Readout) tools: decode, scan")
    actions = ble.add_subparsers(dest="ble_command", metavar="ACTION", required=True)
    decode = actions.add_parser("decode", parents=list(parents),
                                help="decode one advertisement (manufacturer data of company 0x02E1, as hex)")
    decode.add_argument("--key", required=True, help="the device's key: 32 hex digits from VictronConnect")
    decode.add_argument("hex", metavar="HEX", help="the manufacturer data after the company id, as hex")
    decode.add_argument("--json", action="store_true", help="one JSON object, values by metric name")
    scan = actions.add_parser("scan", parents=[*parents, config_file],
                              help="list the Victron adverts heard; with --config.file, check the keys")
    scan.add_argument("--seconds", type=_positive, default=DEFAULT_SCAN_SECONDS,
                      help=f"how long to listen (default {DEFAULT_SCAN_SECONDS:g})")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value
