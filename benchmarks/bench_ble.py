"""CPU per 1,000 Bluetooth Instant Readout adverts: ours against the plain victron-ble call.

Run by hand: `.venv/bin/python -m benchmarks.bench_ble`. Prints figures; asserts nothing about speed.

The adverts are genuine (built and AES-CTR encrypted like a device's) from six devices, one per record type,
each advert new (its nonce counts up, as a device's does when its values change). Contenders:

- victron-ble as its own scanner uses it: one parser per device (cached by address), `parse(data)` per advert;
- ours, the decoder alone: `AdvertDecoder.decode` — the same library decryption and record parsing, plus the
  checks (key-check byte, length) and the mapping onto text-protocol labels;
- ours, the daemon's whole path: `BleDevices.handle` — decode, then record into the state the metrics read.

Then the same with every advert heard five times (a device repeats its advert until its values change, and
BlueZ passes each on), and with adverts from devices that are not ours (a busy campsite): those cost a lookup.
Times are process CPU time, the best of three runs.
"""

import time
from collections.abc import Callable, Sequence

from victron_ble.devices import Device, detect_device_type

from pvmonit_exporter.ble.advert import AdvertDecoder
from pvmonit_exporter.ble.encode import build_advert, pack_record
from pvmonit_exporter.config import DeviceConfig
from pvmonit_exporter.sources.ble import Advert, BleDevices
from pvmonit_exporter.state import State

KEY = bytes.fromhex("8f3a9c55d2e14b07a6c3f0e2b1d49a7c")
ADVERTS = 1000
REPEATS = 3
HEARD_TIMES = 5

# (address, product id, record type, values in the record's raw units)
DEVICES: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("C0:00:00:00:00:01", 0xA042, 0x01, {"charge_state": 3, "charger_error": 0, "battery_voltage": 1342,
                                         "battery_current": 75, "yield_today": 37, "pv_power": 112}),
    ("C0:00:00:00:00:02", 0xA389, 0x02, {"time_to_go": 754, "battery_voltage": 1287, "alarm_reason": 0,
                                         "aux_value": 29815, "aux_mode": 2, "battery_current": -3125,
                                         "consumed_ah": 412, "state_of_charge": 793}),
    ("C0:00:00:00:00:03", 0xA3A4, 0x02, {"battery_voltage": 1302, "alarm_reason": 0, "aux_value": 28815,
                                         "aux_mode": 2}),
    ("C0:00:00:00:00:04", 0xA2E2, 0x03, {"device_state": 9, "alarm_reason": 0, "battery_voltage": 2512,
                                         "ac_apparent_power": 184, "ac_voltage": 23001, "ac_current": 8}),
    ("C0:00:00:00:00:05", 0xA3C0, 0x04, {"device_state": 3, "charger_error": 0, "input_voltage": 1385,
                                         "output_voltage": 1421, "off_reason": 0}),
    ("C0:00:00:00:00:06", 0xA336, 0x08, {"charge_state": 5, "charger_error": 0, "output_voltage1": 2760,
                                         "output_current1": 31, "temperature": 62, "ac_current": 4}),
)


def adverts(count: int, heard_times: int = 1, address_prefix: str = "") -> list[Advert]:
    """`count` adverts, round robin over the devices, each new one `heard_times` in a row."""
    out: list[Advert] = []
    nonce = 0
    while len(out) < count:
        for address, product_id, record_type, values in DEVICES:
            nonce += 1
            data = build_advert(product_id, record_type, pack_record(record_type, values), KEY, nonce)
            out.extend([Advert(address_prefix + address[len(address_prefix):], data, -70, 0.0)] * heard_times)
    return out[:count]


def cpu_ms(run: Callable[[Sequence[Advert]], None], items: Sequence[Advert]) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        start = time.process_time()
        run(items)
        best = min(best, time.process_time() - start)
    return best * 1000 * ADVERTS / len(items)


def victron_ble(items: Sequence[Advert]) -> None:
    parsers: dict[str, Device] = {}
    for item in items:
        parser = parsers.get(item.address)
        if parser is None:
            parser_class = detect_device_type(item.data)
            assert parser_class is not None
            parser = parsers[item.address] = parser_class(KEY.hex())
        parser.parse(item.data)


def ours_decoder(items: Sequence[Advert]) -> None:
    decoders: dict[str, AdvertDecoder] = {}
    for item in items:
        decoder = decoders.get(item.address)
        if decoder is None:
            decoder = decoders[item.address] = AdvertDecoder(KEY)
        decoder.decode(item.data)


def ours_daemon(items: Sequence[Advert]) -> None:
    configs = [DeviceConfig(f"d{i}", "", ble_address=address, ble_key=KEY) for i, (address, *_) in enumerate(DEVICES)]
    devices = BleDevices(configs, State(configs))
    for item in items:
        devices.handle(item)


def main() -> None:
    distinct = adverts(ADVERTS * 3)
    repeated = adverts(ADVERTS * 3, heard_times=HEARD_TIMES)
    foreign = adverts(ADVERTS * 3, address_prefix="D0")  # same adverts, addresses nobody configured
    print(f"CPU ms per {ADVERTS:,} adverts (6 devices, one per record type; best of {REPEATS})")
    print(f"{'':44}{'victron-ble parse':>18}{'ours: decoder':>15}{'ours: daemon path':>19}")
    rows = (("every advert new", distinct), (f"each advert heard {HEARD_TIMES} times", repeated))
    for title, items in rows:
        library, decoder, daemon = (cpu_ms(f, items) for f in (victron_ble, ours_decoder, ours_daemon))
        print(f"{title:44}{library:>18.1f}{decoder:>15.1f}{daemon:>19.1f}")
    print(f"{'from devices not configured (a campsite)':44}{'-':>18}{'-':>15}{cpu_ms(ours_daemon, foreign):>19.2f}")


if __name__ == "__main__":
    main()
