"""YAML → typed, validated settings. Every error names the file, the key path and what is wrong, in one line."""

import re
from collections.abc import Callable
from pathlib import Path
from typing import Literal, cast

import yaml

from pvmonit_exporter.ble.keys import parse_address, parse_key
from pvmonit_exporter.config.checks import KEY_RE, Checks, ConfigError, Reader, type_name
from pvmonit_exporter.config.schema import (
    DEFAULT_AUTO_PORT_PATTERNS,
    DEFAULT_EMONCMS_FIELDS,
    DEFAULT_STALE_TIMEOUT,
    PAYLOADS,
    PROBE_QUANTITIES,
    PROBE_TYPES,
    Config,
    DeviceConfig,
    EmoncmsConfig,
    ProbeConfig,
    WebConfig,
)


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
    checks = Checks(file)
    top = Reader(file, data, "")
    stale = top.get("stale_timeout", checks.positive, DEFAULT_STALE_TIMEOUT)
    web = _web(top.get("web", lambda v, p: Reader(file, v, p), None), checks)
    devices = _devices(top.get("devices", _list_of_mappings(checks), []), file, checks, stale)
    probes = _probes(top.get("probes", _list_of_mappings(checks), []), file, checks)
    emoncms = top.get("emoncms", lambda v, p: _emoncms(Reader(file, v, p), checks, file), None)
    patterns = top.get("auto_port_patterns", checks.patterns, DEFAULT_AUTO_PORT_PATTERNS)
    top.finish()
    if not devices and not probes:
        raise ConfigError(file, "devices", "configure at least one device or probe")
    return Config(devices, probes, emoncms, web, stale, patterns, file)


def _list_of_mappings(checks: Checks) -> Callable[[object, str], list[object]]:
    def check(value: object, path: str) -> list[object]:
        if not isinstance(value, list):
            raise checks.fail(path, f"must be a list, got {type_name(value)}")
        return value

    return check


def _web(reader: Reader | None, checks: Checks) -> WebConfig:
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


def _devices(items: list[object], file: str, checks: Checks, stale: float) -> tuple[DeviceConfig, ...]:
    devices: list[DeviceConfig] = []
    seen: dict[str, str] = {}
    first_address: dict[str, int] = {}
    for index, item in enumerate(items):
        reader = Reader(file, item, f"devices[{index}]")
        name = reader.require("name", checks.name)
        ble_address, ble_key = _bluetooth(reader, checks, file)
        device = DeviceConfig(
            name=name,
            port="" if ble_address else reader.require("port", checks.text),
            serial_number=reader.get("serial_number", checks.text, None),
            stale_timeout=reader.get("stale_timeout", checks.positive, stale),
            emoncms_fields=reader.get("emoncms_fields", checks.labels, None),
            ble_address=ble_address,
            ble_key=ble_key,
        )
        reader.finish()
        if device.name in seen:
            raise reader.error("name", f"duplicate device name {device.name!r} (also {seen[device.name]})")
        seen[device.name] = reader.path
        if device.ble_address:
            if device.ble_address in first_address:
                raise reader.error("ble_address", f"{device.ble_address} is already used by "
                                                  f"devices[{first_address[device.ble_address]}]")
            first_address[device.ble_address] = index
            if device.serial_number:
                raise reader.error("serial_number", "is only used with port: auto")
            devices.append(device)
            continue
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
        if device.port == "auto" or device.ble_address:
            continue
        if device.port in first_user:
            other = first_user[device.port]
            raise ConfigError(file, f"devices[{index}].port", f"{device.port} is already used by devices[{other}]")
        first_user[device.port] = index
    return tuple(devices)


def _probes(items: list[object], file: str, checks: Checks) -> tuple[ProbeConfig, ...]:
    probes: list[ProbeConfig] = []
    names: set[str] = set()
    for index, item in enumerate(items):
        reader = Reader(file, item, f"probes[{index}]")
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


def _emoncms(reader: Reader, checks: Checks, file: str) -> EmoncmsConfig:
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
    if not KEY_RE.fullmatch(apikey):
        where = "apikey" if inline is not None else "apikey_file"
        raise reader.error(where, "the key must be one word of printable characters (an emoncms key is 32 "
                                  "hexadecimal digits); found spaces, line breaks or control characters")
    defaults = EmoncmsConfig(url="", apikey="", queue_dir=Path())
    fields_reader = reader.get("fields", lambda v, p: Reader(file, v, p), None)
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


def _read_key(path: str, reader: Reader, name: str = "apikey_file") -> str:
    try:
        key = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise reader.error(name, f"cannot read {path}: {exc.strerror or exc}") from None
    if not key:
        raise reader.error(name, f"{path} is empty")
    return key


def _bluetooth(reader: Reader, checks: Checks, file: str) -> tuple[str | None, bytes | None]:
    """A device's `ble_address` and its key (`ble_key`, or `ble_key_file` read like emoncms.apikey_file)."""
    address = reader.get("ble_address", checks.text, None)
    inline = reader.get("ble_key", checks.text, None)
    key_file = reader.get("ble_key_file", checks.text, None)
    if address is None:
        if inline is not None or key_file is not None:
            raise reader.error("ble_key" if inline is not None else "ble_key_file", "is only used with ble_address")
        return None, None
    if "port" in reader.data:
        raise reader.error("ble_address", "set either port (a VE.Direct cable) or ble_address (Bluetooth), not both")
    try:
        address = parse_address(address)
    except ValueError as exc:
        raise reader.error("ble_address", str(exc)) from None
    if (inline is None) == (key_file is None):
        raise reader.error("ble_key", "set exactly one of ble_key or ble_key_file")
    where = "ble_key" if inline is not None else "ble_key_file"
    # Relative to the configuration file, like apikey_file.
    text = inline if inline is not None else _read_key(str(Path(file).parent / (key_file or "")), reader, where)
    try:
        return address, parse_key(text)
    except ValueError as exc:
        raise reader.error(where, str(exc)) from None
