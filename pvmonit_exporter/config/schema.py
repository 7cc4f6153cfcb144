"""The settings a configuration file describes: typed, frozen dataclasses and their defaults.

The keys are documented, one by one, in `config.yaml.example`.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

DEFAULT_PORT = 9737
DEFAULT_LISTEN_ADDRESS = f":{DEFAULT_PORT}"
DEFAULT_STALE_TIMEOUT = 5.0

# Where `port: auto` looks, in this order: Victron cables by id first, then any USB serial port.
DEFAULT_AUTO_PORT_PATTERNS: tuple[str, ...] = (
    "/dev/serial/by-id/usb-VictronEnergy*",
    "/dev/serial/by-id/*",
    "/dev/ttyUSB*",
)

PROBE_TYPES = ("command", "serial", "w1", "file")
PROBE_QUANTITIES = ("temperature", "current", "power")
PAYLOADS = ("pvmonit", "si")

# PvMonit's default field lists (reference emoncms-api.md); an inverter gets its AC output and state.
DEFAULT_EMONCMS_FIELDS: Mapping[str, tuple[str, ...]] = {
    "mppt": ("CS", "PPV", "V", "ERR", "I", "VPV", "H19", "H20", "H21", "H22", "H23"),
    "bmv": ("P", "TTG", "SOC", "CE"),
    "inverter": ("CS", "MODE", "AR", "WARN", "V", "AC_OUT_V", "AC_OUT_I", "AC_OUT_S"),
    "charger": ("CS", "ERR", "V", "I"),
    "unknown": (),
}


@dataclass(frozen=True)
class WebConfig:
    listen_address: str = DEFAULT_LISTEN_ADDRESS
    # Ranges of the live page's bars (PvMonit's gauge maxima).
    battery_voltage_min: float = 11.0
    battery_voltage_max: float = 15.0
    pv_power_max: float = 400.0
    consumption_max: float = 1500.0


@dataclass(frozen=True)
class DeviceConfig:
    name: str
    port: str  # a path, or "auto"; "" for a Bluetooth device
    serial_number: str | None = None
    stale_timeout: float = DEFAULT_STALE_TIMEOUT
    emoncms_fields: tuple[str, ...] | None = None  # None: the defaults for the device's kind
    ble_address: str | None = None  # a Bluetooth device: its address, upper case (E1:2B:3C:4D:5E:6F)
    ble_key: bytes | None = field(default=None, repr=False)  # its Instant Readout key: a secret

    @property
    def source(self) -> Literal["serial", "ble"]:
        return "ble" if self.ble_address else "serial"


@dataclass(frozen=True)
class ProbeConfig:
    name: str
    type: Literal["command", "serial", "w1", "file"]
    quantity: Literal["temperature", "current", "power"]
    interval: float = 60.0
    timeout: float = 10.0
    command: tuple[str, ...] = ()  # type command: argv, run without a shell
    port: str = ""  # type serial
    baud: int = 9600  # type serial
    path: str = ""  # type file: the file; type w1: the sensor's directory or its id (28-…)
    scale: float = 1.0  # calibrated = raw × scale + offset
    offset: float = 0.0
    min: float | None = None  # plausibility bounds, applied after calibration
    max: float | None = None
    power_voltage: float | None = None  # current probes: also publish power = amperes × this voltage
    emoncms_input: str | None = None  # input name under the probe node; default: the probe's name


@dataclass(frozen=True)
class EmoncmsConfig:
    url: str
    apikey: str = field(repr=False)
    queue_dir: Path
    interval: float = 300.0
    batch_size: int = 500
    max_queue_rows: int = 500_000
    payload: Literal["pvmonit", "si"] = "pvmonit"
    timeout: float = 30.0
    probe_node: str = "pvmonit"
    fields: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_EMONCMS_FIELDS))


@dataclass(frozen=True)
class Config:
    devices: tuple[DeviceConfig, ...]
    probes: tuple[ProbeConfig, ...] = ()
    emoncms: EmoncmsConfig | None = None
    web: WebConfig = WebConfig()
    stale_timeout: float = DEFAULT_STALE_TIMEOUT
    auto_port_patterns: tuple[str, ...] = DEFAULT_AUTO_PORT_PATTERNS
    source: str = "<built-in>"
