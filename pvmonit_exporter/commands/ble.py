"""`pvmonit-exporter ble decode` and `ble scan`: the answers to "what does this advert say?" and "is my key
right?". Their flags are in `parsers`; the `[ble]` extra is imported only when a command runs."""

import argparse
import json
import sys
import threading
from dataclasses import dataclass
from types import ModuleType
from typing import IO, TYPE_CHECKING

from pvmonit_exporter.ble.keys import parse_key
from pvmonit_exporter.commands.read import format_block
from pvmonit_exporter.errors import UserError
from pvmonit_exporter.vedirect.fields import metric_values

if TYPE_CHECKING:  # the Bluetooth source is imported when a command runs: `run` parses this module's flags only
    from pvmonit_exporter.sources.ble import Advert, AdvertScanner

def run(args: argparse.Namespace) -> int:
    if args.ble_command == "decode":
        return decode_command(args.key, args.hex, as_json=args.json, out=sys.stdout)
    return scan_command(args.seconds, getattr(args, "config_file", None), out=sys.stdout, err=sys.stderr)


def _advert_module() -> ModuleType:
    from pvmonit_exporter.sources.ble import MISSING_EXTRA

    try:
        from pvmonit_exporter.ble import advert
    except ImportError:
        raise UserError(MISSING_EXTRA) from None
    return advert


def parse_hex(text: str) -> bytes:
    """Hex as tools print it: `1002…`, `10 02 …`, `10:02:…`, with or without `0x`."""
    digits = text.strip().removeprefix("0x").replace(":", "").replace(" ", "")
    try:
        return bytes.fromhex(digits)
    except ValueError:
        raise UserError(f"HEX: not hexadecimal bytes: {text!r}") from None


# --- decode --------------------------------------------------------------------------------------------


def decode_command(key_text: str, hex_text: str, *, as_json: bool, out: IO[str] = sys.stdout) -> int:
    advert = _advert_module()
    try:
        key = parse_key(key_text)
    except ValueError as exc:
        raise UserError(f"--key: {exc}") from None
    try:
        reading = advert.AdvertDecoder(key).decode(parse_hex(hex_text))
    except advert.AdvertError as exc:
        raise UserError(str(exc)) from None
    values = {label: raw for label, raw in reading.block.items() if label != "PID"}
    if as_json:
        document = {
            "product_id": f"0x{reading.product_id:04X}",
            "product": reading.product,
            "record_type": reading.record_type,
            "values": metric_values(values),
        }
        out.write(json.dumps(document, ensure_ascii=False) + "\n")
        return 0
    out.write(f"product: 0x{reading.product_id:04X} {reading.product}\nrecord type: {reading.record_type}\n")
    out.write(format_block(values, "decoded"))
    return 0


# --- scan ----------------------------------------------------------------------------------------------


@dataclass
class Heard:
    """What a scan heard from one address."""

    address: str
    product: str
    record_type: str
    rssi: int | None
    adverts: int = 1
    key: str = ""  # for configured devices: "matches", "does not match …"
    device: str = ""  # the configured name


class ScanListing:
    """Adverts in, one row per address out. `keys` are the configured devices: address → (name, key)."""

    def __init__(self, advert: ModuleType, keys: dict[str, tuple[str, bytes]]) -> None:
        self.advert, self.keys = advert, keys
        self.heard: dict[str, Heard] = {}
        self._lock = threading.Lock()

    def add(self, item: "Advert") -> None:
        try:
            container = self.advert.parse_container(item.data)
        except self.advert.AdvertError:
            return  # another kind of Victron advert (not Instant Readout)
        with self._lock:
            seen = self.heard.get(item.address)
            if seen is not None:
                seen.adverts += 1
                seen.rssi = item.rssi if item.rssi is not None else seen.rssi
                return
            seen = self.heard[item.address] = Heard(item.address, self.advert.product_label(container.product_id),
                                                    self.advert.record_type_of(item.data, container), item.rssi)
            if item.address in self.keys:
                name, key = self.keys[item.address]
                seen.device = name
                seen.key = "matches" if self.advert.key_matches(container, key) else (
                    f"does NOT match (the device's key-check byte is 0x{container.key_check:02X})")

    def lines(self) -> list[str]:
        rows = [("ADDRESS", "PRODUCT", "RECORD TYPE", "RSSI", "ADVERTS", "DEVICE", "KEY")]
        for seen in sorted(self.heard.values(), key=lambda h: h.address):
            rows.append((seen.address, seen.product, seen.record_type,
                         "" if seen.rssi is None else f"{seen.rssi} dBm", str(seen.adverts), seen.device or "-",
                         seen.key or "-"))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                 for row in rows]
        for address, (name, _key) in sorted(self.keys.items()):
            if address not in self.heard:
                lines.append(f"not heard: {name} ({address}) — out of range, or Instant readout is off "
                             "(VictronConnect: Product info)")
        return lines


def scan_command(seconds: float, config_file: str | None, out: IO[str] = sys.stdout, err: IO[str] = sys.stderr,
                 scanner: "AdvertScanner | None" = None) -> int:
    from pvmonit_exporter.sources.ble import (
        MISSING_EXTRA,
        BleakAdvertScanner,
        describe_scanner_error,
        normalise_address,
    )

    advert = _advert_module()
    keys: dict[str, tuple[str, bytes]] = {}
    if config_file:
        from pvmonit_exporter.config import load_config

        keys = {normalise_address(d.ble_address): (d.name, d.ble_key)
                for d in load_config(config_file).devices if d.ble_address and d.ble_key}
    listing = ScanListing(advert, keys)
    if scanner is None:
        try:
            scanner = BleakAdvertScanner()
        except ImportError:
            raise UserError(MISSING_EXTRA) from None
    stop = threading.Event()
    timer = threading.Timer(seconds, stop.set)
    timer.start()

    def listening() -> None:
        err.write(f"listening for {seconds:g} s…\n")
        err.flush()

    try:
        scanner.scan(listing.add, stop, listening)
    except Exception as exc:  # noqa: BLE001 - whatever stops the radio: one line, exit 2
        raise UserError(f"Bluetooth: {describe_scanner_error(exc)}") from None
    finally:
        timer.cancel()
    out.write("\n".join(listing.lines()) + "\n")
    if not listing.heard:
        out.write("no Victron Instant Readout advert heard\n")
    return 0
