"""YAML → typed, validated settings. Every error names the file, the key path and what is wrong, in one line.

The keys are documented, one by one, in `config.yaml.example`.
"""

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

import yaml

from pvmonit_exporter.errors import UserError

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

_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# Anything else would break the HTTP header it travels in (and end up quoted in an error message).
_KEY_RE = re.compile(r"[!-~]{1,256}")


class ConfigError(UserError):
    """A configuration problem; `str()` is the one line to print."""

    def __init__(self, file: str, key_path: str, message: str) -> None:
        self.file, self.key_path, self.message = file, key_path, message
        where = f"{file}: {key_path}: " if key_path else f"{file}: "
        super().__init__(where + message)


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
    port: str  # a path, or "auto"
    serial_number: str | None = None
    stale_timeout: float = DEFAULT_STALE_TIMEOUT
    emoncms_fields: tuple[str, ...] | None = None  # None: the defaults for the device's kind


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


T = TypeVar("T")


class _Reader:
    """Typed access to one YAML mapping, remembering the key path for error messages."""

    def __init__(self, file: str, data: object, path: str) -> None:
        self.file, self.path = file, path
        if not isinstance(data, dict):
            raise ConfigError(file, path, f"must be a mapping, got {_type_name(data)}")
        self.data: dict[str, object] = data
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def error(self, name: str, message: str) -> ConfigError:
        return ConfigError(self.file, self.key(name), message)

    def get(self, name: str, check: Callable[[object, str], T], default: T) -> T:
        self.used.add(name)
        if name not in self.data or self.data[name] is None:
            return default
        return check(self.data[name], self.key(name))

    def require(self, name: str, check: Callable[[object, str], T]) -> T:
        self.used.add(name)
        if name not in self.data or self.data[name] is None:
            raise self.error(name, "missing required key")
        return check(self.data[name], self.key(name))

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used, key=str)
        if unknown:
            allowed = ", ".join(sorted(self.used))
            raise self.error(str(unknown[0]), f"unknown key (allowed here: {allowed})")


def _type_name(value: object) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


class _Checks:
    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, path: str, message: str) -> ConfigError:
        return ConfigError(self.file, path, message)

    def text(self, value: object, path: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(path, f"must be a non-empty string, got {_type_name(value)}")
        return value.strip()

    def name(self, value: object, path: str) -> str:
        text = self.text(value, path)
        if not _NAME_RE.match(text):
            raise self.fail(path, f"{text!r} must be 1-64 letters, digits, '_', '-' or '.'")
        return text

    def number(self, value: object, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(path, f"must be a number, got {_type_name(value)}")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise self.fail(path, f"must be a number (finite), got {value!r:.40}")
        return number

    def positive(self, value: object, path: str) -> float:
        number = self.number(value, path)
        if number <= 0:
            raise self.fail(path, f"must be greater than 0, got {number:g}")
        return number

    def at_least_one(self, value: object, path: str) -> float:
        number = self.number(value, path)
        if number < 1:
            raise self.fail(path, f"must be at least 1, got {number:g}")
        return number

    def count(self, value: object, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.fail(path, f"must be a whole number >= 1, got {value!r}")
        return value

    def labels(self, value: object, path: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(path, "must be a list of VE.Direct labels (strings)")
        return tuple(value)

    def patterns(self, value: object, path: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.startswith("/") for v in value):
            raise self.fail(path, "must be a non-empty list of absolute glob patterns such as /dev/ttyUSB*")
        return tuple(value)

    def argv(self, value: object, path: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise self.fail(path, "must be a non-empty list of strings (argv; no shell is used)")
        return tuple(value)

    def choice(self, options: tuple[str, ...]) -> Callable[[object, str], str]:
        def check(value: object, path: str) -> str:
            if value not in options:
                raise self.fail(path, f"must be one of {', '.join(options)}, got {value!r}")
            return str(value)

        return check

    def listen_address(self, value: object, path: str) -> str:
        text = self.text(value, path)
        parse_listen_address(text, lambda message: self.fail(path, message))
        return text


def parse_listen_address(text: str, error: Callable[[str], Exception]) -> tuple[str, int]:
    """`HOST:PORT`, `:PORT` (all interfaces) or `[::1]:PORT` → (host, port)."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not (port_text.isascii() and port_text.isdigit()) or not 0 <= int(port_text) <= 65535:
        raise error(f"{text!r} is not HOST:PORT")
    # All interfaces: "::" is a dual-stack socket (IPv6 and IPv4), see web.server.bind_address.
    return host.strip("[]") or "::", int(port_text)


def load_config(path: str | Path) -> Config:
    """Read and validate a configuration file; raises ConfigError."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(file, "", "no such file") from None
    except PermissionError:
        raise ConfigError(file, "", "permission denied") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(file, "", f"cannot read: {exc}") from None
    return parse_config(text, file)


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice is an error: the last one would silently win."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[object, object]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in the same mapping", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_config(text: str, file: str) -> Config:
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(file, "", f"invalid YAML: {where}{problem}") from None
    if data is None:
        raise ConfigError(file, "", "the file is empty")
    checks = _Checks(file)
    top = _Reader(file, data, "")
    stale = top.get("stale_timeout", checks.positive, DEFAULT_STALE_TIMEOUT)
    web = _web(top.get("web", lambda v, p: _Reader(file, v, p), None), checks)
    devices = _devices(top.get("devices", _list_of_mappings(checks), []), file, checks, stale)
    probes = _probes(top.get("probes", _list_of_mappings(checks), []), file, checks)
    emoncms = top.get("emoncms", lambda v, p: _emoncms(_Reader(file, v, p), checks, file), None)
    patterns = top.get("auto_port_patterns", checks.patterns, DEFAULT_AUTO_PORT_PATTERNS)
    top.finish()
    if not devices and not probes:
        raise ConfigError(file, "devices", "configure at least one device or probe")
    return Config(devices, probes, emoncms, web, stale, patterns, file)


def _list_of_mappings(checks: _Checks) -> Callable[[object, str], list[object]]:
    def check(value: object, path: str) -> list[object]:
        if not isinstance(value, list):
            raise checks.fail(path, f"must be a list, got {_type_name(value)}")
        return value

    return check


def _web(reader: _Reader | None, checks: _Checks) -> WebConfig:
    if reader is None:
        return WebConfig()
    defaults = WebConfig()
    web = WebConfig(
        listen_address=reader.get("listen_address", checks.listen_address, defaults.listen_address),
        battery_voltage_min=reader.get("battery_voltage_min", checks.number, defaults.battery_voltage_min),
        battery_voltage_max=reader.get("battery_voltage_max", checks.number, defaults.battery_voltage_max),
        pv_power_max=reader.get("pv_power_max", checks.positive, defaults.pv_power_max),
        consumption_max=reader.get("consumption_max", checks.positive, defaults.consumption_max),
    )
    reader.finish()
    if web.battery_voltage_min >= web.battery_voltage_max:
        raise reader.error("battery_voltage_max", "must be greater than battery_voltage_min")
    return web


def _devices(items: list[object], file: str, checks: _Checks, stale: float) -> tuple[DeviceConfig, ...]:
    devices: list[DeviceConfig] = []
    seen: dict[str, str] = {}
    for index, item in enumerate(items):
        reader = _Reader(file, item, f"devices[{index}]")
        device = DeviceConfig(
            name=reader.require("name", checks.name),
            port=reader.require("port", checks.text),
            serial_number=reader.get("serial_number", checks.text, None),
            stale_timeout=reader.get("stale_timeout", checks.positive, stale),
            emoncms_fields=reader.get("emoncms_fields", checks.labels, None),
        )
        reader.finish()
        if device.name in seen:
            raise reader.error("name", f"duplicate device name {device.name!r} (also {seen[device.name]})")
        seen[device.name] = reader.path
        if device.port != "auto" and not device.port.startswith("/"):
            raise reader.error("port", f"{device.port!r} must be an absolute path (/dev/ttyUSB0) or auto")
        if device.serial_number and device.port != "auto":
            raise reader.error("serial_number", "is only used with port: auto")
        devices.append(device)
    serial_less = [i for i, d in enumerate(devices) if d.port == "auto" and d.serial_number is None]
    if len(serial_less) > 1:
        raise ConfigError(file, f"devices[{serial_less[1]}].port",
                          f"only one `auto` device may go without serial_number (devices[{serial_less[0]}] "
                          "already does): they could swap ports; give serial_number or a fixed port")
    first_user: dict[str, int] = {}
    for index, device in enumerate(devices):
        if device.port == "auto":
            continue
        if device.port in first_user:
            other = first_user[device.port]
            raise ConfigError(file, f"devices[{index}].port", f"{device.port} is already used by devices[{other}]")
        first_user[device.port] = index
    return tuple(devices)


def _probes(items: list[object], file: str, checks: _Checks) -> tuple[ProbeConfig, ...]:
    probes: list[ProbeConfig] = []
    names: set[str] = set()
    for index, item in enumerate(items):
        reader = _Reader(file, item, f"probes[{index}]")
        kind = reader.require("type", checks.choice(PROBE_TYPES))
        quantity = reader.require("quantity", checks.choice(PROBE_QUANTITIES))
        probe = ProbeConfig(
            name=reader.require("name", checks.name),
            type=cast(Literal["command", "serial", "w1", "file"], kind),
            quantity=cast(Literal["temperature", "current", "power"], quantity),
            interval=reader.get("interval", checks.positive, 60.0),
            timeout=reader.get("timeout", checks.positive, 10.0),
            command=reader.get("command", checks.argv, ()) if kind == "command" else (),
            port=reader.get("port", checks.text, "") if kind == "serial" else "",
            baud=reader.get("baud", checks.count, 9600) if kind == "serial" else 9600,
            path=reader.get("path", checks.text, "") if kind in ("file", "w1") else "",
            scale=reader.get("scale", checks.number, 1.0),
            offset=reader.get("offset", checks.number, 0.0),
            min=reader.get("min", checks.number, None),
            max=reader.get("max", checks.number, None),
            power_voltage=reader.get("power_voltage", checks.positive, None),
            emoncms_input=reader.get("emoncms_input", checks.name, None),
        )
        reader.finish()
        required = {"command": ("command", probe.command), "serial": ("port", probe.port),
                    "file": ("path", probe.path), "w1": ("path", probe.path)}[kind]
        if not required[1]:
            raise reader.error(required[0], f"missing required key for a {kind} probe")
        if probe.name in names:
            raise reader.error("name", f"duplicate probe name {probe.name!r}")
        if probe.min is not None and probe.max is not None and probe.min >= probe.max:
            raise reader.error("max", "must be greater than min")
        if probe.power_voltage is not None and probe.quantity != "current":
            raise reader.error("power_voltage", "only applies to a current probe")
        names.add(probe.name)
        probes.append(probe)
    return tuple(probes)


def _emoncms(reader: _Reader, checks: _Checks, file: str) -> EmoncmsConfig:
    url = reader.require("url", checks.text).rstrip("/")
    if not re.match(r"^https?://[^/\s]+", url):
        raise reader.error("url", f"{url!r} must start with http:// or https://")
    inline = reader.get("apikey", checks.text, None)
    key_file = reader.get("apikey_file", checks.text, None)
    if (inline is None) == (key_file is None):
        raise reader.error("apikey", "set exactly one of apikey or apikey_file")
    # A relative apikey_file is relative to the configuration file, not to wherever the daemon was started.
    key_path = Path(file).parent / (key_file or "")
    apikey = inline if inline is not None else _read_key(str(key_path), reader)
    if not _KEY_RE.fullmatch(apikey):
        where = "apikey" if inline is not None else "apikey_file"
        raise reader.error(where, "the key must be one word of printable characters (an emoncms key is 32 "
                                  "hexadecimal digits); found spaces, line breaks or control characters")
    defaults = EmoncmsConfig(url="", apikey="", queue_dir=Path())
    fields_reader = reader.get("fields", lambda v, p: _Reader(file, v, p), None)
    kind_fields = dict(DEFAULT_EMONCMS_FIELDS)
    if fields_reader is not None:
        for kind in DEFAULT_EMONCMS_FIELDS:
            kind_fields[kind] = fields_reader.get(kind, checks.labels, kind_fields[kind])
        fields_reader.finish()
    config = EmoncmsConfig(
        url=url,
        apikey=apikey,
        # Relative to the configuration file, like apikey_file: the daemon's working directory is `/`.
        queue_dir=Path(file).parent / reader.require("queue_dir", checks.text),
        interval=reader.get("interval", checks.at_least_one, defaults.interval),
        batch_size=reader.get("batch_size", checks.count, defaults.batch_size),
        max_queue_rows=reader.get("max_queue_rows", checks.count, defaults.max_queue_rows),
        payload=cast(Literal["pvmonit", "si"], reader.get("payload", checks.choice(PAYLOADS), "pvmonit")),
        timeout=reader.get("timeout", checks.positive, defaults.timeout),
        probe_node=reader.get("probe_node", checks.name, defaults.probe_node),
        fields=kind_fields,
    )
    reader.finish()
    return config


def _read_key(path: str, reader: _Reader) -> str:
    try:
        key = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise reader.error("apikey_file", f"cannot read {path}: {exc.strerror or exc}") from None
    if not key:
        raise reader.error("apikey_file", f"{path} is empty")
    return key


# Probe keys that mean nothing for a type: left out of `check-config` output, which then loads back.
_NOT_APPLICABLE: Mapping[str, tuple[str, ...]] = {
    "command": ("port", "baud", "path"),
    "serial": ("command", "path"),
    "w1": ("command", "port", "baud"),
    "file": ("command", "port", "baud"),
}


def mask_secret(secret: str) -> str:
    """What `check-config` shows of a key: enough to recognise it, not to use it."""
    return "****" + secret[-4:] if len(secret) >= 12 else "****"


def effective_config(config: Config) -> dict[str, Any]:
    """The configuration with every default filled in and secrets masked, ready to print as YAML."""

    def plain(value: object) -> object:
        if is_dataclass(value) and not isinstance(value, type):
            return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        if isinstance(value, Mapping):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, Path):
            return str(value)
        return value

    result = cast(dict[str, Any], plain(config))
    result.pop("source", None)
    for probe in result["probes"]:
        for key in _NOT_APPLICABLE[probe["type"]]:
            probe.pop(key)
    if config.emoncms is not None:
        result["emoncms"]["apikey"] = mask_secret(config.emoncms.apikey)
    return result
