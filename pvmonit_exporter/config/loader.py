"""YAML → typed, validated settings. Every error names the file, the key path and what is wrong, in one line."""

import dataclasses
import os
import re
import socket
import stat
from collections.abc import Callable, Hashable, Iterator
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import urlsplit

import yaml

from pvmonit_exporter.ble.keys import parse_address, parse_key
from pvmonit_exporter.config import control as control_sections
from pvmonit_exporter.config.checks import (
    Checks,
    ConfigError,
    Reader,
    emoncms_key_problem,
    type_name,
    unknown_key,
)
from pvmonit_exporter.config.emoncms_names import device_node, emoncms_name, label_input, probe_inputs
from pvmonit_exporter.config.mqtt_ids import device_identifier, object_id
from pvmonit_exporter.config.schema import (
    DEFAULT_AUTO_PORT_PATTERNS,
    DEFAULT_EMONCMS_FIELDS,
    DEFAULT_EMONCMS_TOPIC,
    DEFAULT_STALE_TIMEOUT,
    EMONCMS_ORG_NODE_MAX,
    LABEL_LISTS,
    MQTT_SCHEMES,
    PAYLOADS,
    PROBE_KEYS_NOT_APPLICABLE,
    PROBE_QUANTITIES,
    PROBE_TYPES,
    SECTION_KEYS,
    Config,
    DeviceConfig,
    EmoncmsConfig,
    MqttConfig,
    ProbeConfig,
    WebConfig,
    is_remote,
    remote_port_problem,
)
from pvmonit_exporter.safe_text import mask_url, url_credentials_problem

# A configuration is a few kilobytes: anything bigger is the wrong file, and is not read into memory whole.
MAX_FILE_BYTES = 1 << 20
# Values in the document once every alias is expanded; a real configuration has a few hundred. Checked on the
# composed nodes, before anything is built, so that a "billion laughs" document costs nothing.
MAX_EXPANDED_NODES = 10_000
# Lists and mappings inside each other: a configuration needs 4; refused early, before Python's recursion limit.
MAX_NESTING = 32


# An emoncms key is 32 characters; a key file is never bigger than this.
MAX_KEY_FILE_BYTES = 4096


def load_config(path: str | Path, *, key_required: bool = True) -> Config:
    """Read and validate a configuration file; raises ConfigError.

    With `key_required=False` (check-config, showing the queue), an emoncms key file that is absent or that
    this user may not read is a warning in `Config.warnings` and the key is left empty: with LoadCredential=
    the file exists only inside the running service."""
    file = str(path)
    try:
        text = _read_text(file, MAX_FILE_BYTES, "a configuration file")
    except _UnreadableError as exc:
        raise ConfigError(file, "", exc.reason_here, line=exc.line) from None
    return parse_config(text, file, key_required=key_required)


class _UnreadableError(Exception):
    """Why a file cannot be used (`str()`); `absent` and `denied` are the causes a stopped service explains."""

    def __init__(self, reason: str, *, absent: bool = False, denied: bool = False, line: int | None = None,
                 reason_here: str | None = None) -> None:
        super().__init__(reason)
        self.absent, self.denied, self.line = absent, denied, line
        self.reason_here = reason if reason_here is None else reason_here  # said on `line` of the file itself


def _read_text(path: str, limit: int, what: str) -> str:
    """A regular UTF-8 file of at most `limit` bytes, else `_UnreadableError`."""
    try:
        # O_NONBLOCK: opening a FIFO nobody writes to would wait forever; the type is checked right after.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except (FileNotFoundError, NotADirectoryError):
        raise _UnreadableError("no such file", absent=True) from None
    except PermissionError:
        raise _UnreadableError("permission denied", denied=True) from None
    except OSError as exc:
        raise _UnreadableError(f"cannot read: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(descriptor).st_mode
        if stat.S_ISDIR(mode):
            raise _UnreadableError(f"is a directory, not {what}")
        if not stat.S_ISREG(mode):
            raise _UnreadableError("is not a regular file (a device, a FIFO or a socket)")
        data = b""
        while len(data) <= limit and (chunk := os.read(descriptor, limit + 1 - len(data))):
            data += chunk
    except OSError as exc:
        raise _UnreadableError(f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(descriptor)
    if len(data) > limit:
        raise _UnreadableError(f"larger than {limit // 1024} KiB: not {what}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        problem = f"not UTF-8 text: byte 0x{data[exc.start]:02x}"
        raise _UnreadableError(f"{problem} on line {line} (save the file as UTF-8)", line=line,
                               reason_here=f"{problem} (save the file as UTF-8)") from None


def _short_tag(tag: str) -> str:
    return tag.replace("tag:yaml.org,2002:", "!!")


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [child for pair in node.value for child in pair]
    return []


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a document whose aliases would expand it past MAX_EXPANDED_NODES values, or into itself.

    Sizes are counted on the node graph, where an alias is the very node it names: linear in the file's size."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()  # on the path from the root: meeting one again is a cycle
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            open_nodes.discard(id(node))
            size = 1 + sum(sizes[id(child)] for child in _children(node))
            if size > MAX_EXPANDED_NODES:
                raise yaml.composer.ComposerError(
                    None, None, f"anchors and aliases expand to more than {MAX_EXPANDED_NODES} values; refused "
                                "before expanding them", node.start_mark)
            sizes[id(node)] = size
        elif id(node) not in sizes:
            if id(node) in open_nodes:
                raise yaml.composer.ComposerError(None, None, "an alias refers to a node that contains it",
                                                  node.start_mark)
            open_nodes.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in _children(node))


class _Mapping(dict[object, object]):
    """A mapping of the file, with the line of each of its keys (from 1)."""

    key_lines: dict[object, int]


class _Sequence(list[object]):
    """A list of the file, with the line of each of its items (from 1)."""

    item_lines: list[int]


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, with every surprise turned into a YAMLError: a key given twice (the last one would
    silently win), a value its tag cannot hold (`!!float abc`, a date such as 2026-02-30), aliases that expand
    enormously or into themselves, nesting too deep."""

    nesting = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self.nesting += 1
        try:
            if self.nesting > MAX_NESTING and parent is not None:
                raise yaml.composer.ComposerError(None, None, f"lists or mappings nested more than {MAX_NESTING} deep",
                                                  parent.start_mark)
            return super().compose_node(parent, index)
        finally:
            self.nesting -= 1

    def compose_document(self) -> yaml.Node | None:
        node = super().compose_document()
        if node is not None:
            _check_expansion(node)
        return node

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except Exception as exc:  # noqa: BLE001 - PyYAML's constructors fail in many ways (`!!bool maybe`: KeyError,
            # `!!timestamp notadate`: AttributeError, `!!int ""`: IndexError): each is a value its tag cannot hold
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value!r:.40} is not a valid {_short_tag(node.tag)}{_reason(exc)}",
                node.start_mark) from None

    def construct_lined_mapping(self, node: yaml.MappingNode) -> Iterator[_Mapping]:
        """`!!map`, remembering where each key is (after `construct_mapping`, merged keys included)."""
        data = _Mapping()
        yield data
        data.update(self.construct_mapping(node))
        data.key_lines = {self.construct_object(key): key.start_mark.line + 1 for key, _ in node.value}

    def construct_lined_sequence(self, node: yaml.SequenceNode) -> Iterator[_Sequence]:
        data = _Sequence()
        yield data
        data.extend(self.construct_sequence(node))
        data.item_lines = [item.start_mark.line + 1 for item in node.value]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[object, object]:
        if not isinstance(node, yaml.MappingNode):
            return super().construct_mapping(node, deep=deep)  # refuses it with its own message
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                continue  # the base class refuses it with its own message
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in the same mapping", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_StrictLoader.add_constructor("tag:yaml.org,2002:map", _StrictLoader.construct_lined_mapping)
_StrictLoader.add_constructor("tag:yaml.org,2002:seq", _StrictLoader.construct_lined_sequence)


def _reason(exc: Exception) -> str:
    """`: why`, from a constructor's exception, when it says something (a KeyError only repeats the value)."""
    return f": {exc}" if isinstance(exc, ValueError | OverflowError) and str(exc) else ""


def _load_yaml(text: str, file: str) -> object:
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = _short_tag(getattr(exc, "problem", None) or str(exc).splitlines()[0])
        raise ConfigError(file, "", f"invalid YAML: {problem}",
                          line=mark.line + 1 if mark is not None else None) from None


def _key_lines(data: object, path: str = "", lines: dict[str, int] | None = None) -> dict[str, int]:
    """The line of every key path of `data` (`devices[1].port`, as the errors write them)."""
    lines = {} if lines is None else lines
    children: list[tuple[str, int, object]] = []
    if isinstance(data, _Mapping):
        children = [(f"{path}.{key}" if path else str(key), data.key_lines[key], value) for key, value in data.items()]
    elif isinstance(data, _Sequence):
        children = [(f"{path}[{index}]", line, item)
                    for index, (item, line) in enumerate(zip(data, data.item_lines, strict=True))]
    for child, line, value in children:
        lines[child] = line
        _key_lines(value, child, lines)
    return lines


def _located(error: ConfigError, lines: dict[str, int]) -> ConfigError:
    """`error` on the line of its place, or of the nearest enclosing key or item the file has (a missing key:
    its mapping's line); a problem of the file as a whole has no line."""
    place = error.place
    while place and place not in lines:
        place = place[: place.rindex("[")] if place.endswith("]") and "[" in place else place.rpartition(".")[0]
    return error.located(lines.get(place))


def _check_names(value: object, path: str, place: str, checks: Checks) -> None:
    """Refuse an unknown key or VE.Direct label anywhere in the sections SECTION_KEYS describes, before anything
    else is checked: a typo is the likeliest mistake, and "missing required key" would not name it."""
    if isinstance(value, dict) and place in SECTION_KEYS:
        allowed = SECTION_KEYS[place]
        for key in value:
            if key not in allowed:
                raise checks.fail(path, unknown_key(key, allowed), place=f"{path}.{key}" if path else str(key))
        for key, item in value.items():
            _check_names(item, f"{path}.{key}" if path else str(key), f"{place}.{key}" if place else str(key),
                         checks)
    elif isinstance(value, list):
        if place in LABEL_LISTS or f"{place.rpartition('.')[0]}.*" in LABEL_LISTS:
            checks.labels(value, path)
        else:
            for index, item in enumerate(value):
                _check_names(item, f"{path}[{index}]", f"{place}[]", checks)


def parse_config(text: str, file: str, *, key_required: bool = True) -> Config:
    data = _load_yaml(text, file)
    if data is None:
        raise ConfigError(file, "", "the file is empty")
    lines = _key_lines(data)
    warnings: list[ConfigError] = []
    try:
        config = _build(data, file, key_required=key_required, warnings=warnings)
    except ConfigError as exc:
        raise _located(exc, lines) from None
    return dataclasses.replace(config, warnings=tuple(str(_located(warning, lines)) for warning in warnings))


def _build(data: object, file: str, *, key_required: bool, warnings: list[ConfigError]) -> Config:
    checks = Checks(file)
    data = control_sections.yaml_11_switch_keys(data)
    _check_names(data, "", "", checks)
    top = Reader(file, data, "")
    stale = top.get("stale_timeout", checks.measure("stale_timeout"), DEFAULT_STALE_TIMEOUT)
    web = _web(top.get("web", lambda v, p: Reader(file, v, p), None), checks)
    devices = _devices(top.get("devices", _list_of_mappings(checks), []), file, checks, stale,
                       key_required=key_required, warnings=warnings)
    probes = _probes(top.get("probes", _list_of_mappings(checks), []), file, checks)
    mqtt = top.get("mqtt", lambda v, p: _mqtt(Reader(file, v, p), checks, file, key_required=key_required,
                                              warnings=warnings), None)
    emoncms = top.get("emoncms", lambda v, p: _emoncms(Reader(file, v, p), checks, file, mqtt,
                                                       key_required=key_required, warnings=warnings), None)
    patterns = top.get("auto_port_patterns", checks.patterns, DEFAULT_AUTO_PORT_PATTERNS)
    control = control_sections.control(top.get("control", lambda v, p: Reader(file, v, p), None), checks, file)
    actuators = control_sections.actuators(top.get("actuators", _list_of_mappings(checks), []), file, checks, devices,
                                           mqtt=mqtt is not None)
    rules = control_sections.rules(top.get("rules", _list_of_mappings(checks), []), file, checks, actuators,
                                   devices, probes)
    top.finish()
    if not devices and not probes:
        raise ConfigError(file, "devices", "configure at least one device or probe")
    _check_shared_ports(file, devices, probes)
    if emoncms is not None:
        _check_emoncms_org_nodes(file, emoncms, devices)
        _check_emoncms_destinations(file, emoncms, devices, probes)
    if mqtt is not None:
        _check_object_ids(file, devices, probes)
    return Config(devices=devices, probes=probes, emoncms=emoncms, web=web, mqtt=mqtt, stale_timeout=stale,
                  auto_port_patterns=patterns, control=control, actuators=actuators, rules=rules, source=file)


_TOPIC_LEVEL_RE = re.compile(r"^[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*$")


def _topic(reader: Reader, checks: Checks, name: str, default: str) -> str:
    """A topic prefix: levels of letters, digits, '_', '-' and '.', without wildcards or empty levels."""
    topic = reader.get(name, checks.text, default)
    if not _TOPIC_LEVEL_RE.match(topic):
        raise reader.error(name, f"{topic!r} must be topic levels of letters, digits, '_', '-' or '.' separated by "
                                 "'/' (no '+', '#', spaces or empty levels)")
    return topic


def parse_mqtt_url(url: str) -> tuple[str, int, bool]:
    """`mqtt://HOST[:PORT]` or `mqtts://HOST[:PORT]` → (host, port, TLS); ValueError saying what is wrong."""
    parts = urlsplit(url)
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme not in MQTT_SCHEMES:
        raise ValueError(f"{mask_url(url)!r} must start with mqtt:// or mqtts:// (TLS)")
    try:
        port = parts.port or MQTT_SCHEMES[scheme]
    except ValueError:
        port = 0
    if not parts.hostname or parts.username or parts.password or parts.path.strip("/") or parts.query \
            or not 0 < port < 65536:
        raise ValueError(f"{mask_url(url)!r} must be {scheme}://HOST or {scheme}://HOST:PORT (a port "
                         "from 1 to 65535; the user goes in username, the password in password_file)")
    return parts.hostname, port, scheme == "mqtts"


def _mqtt(reader: Reader, checks: Checks, file: str, *, key_required: bool, warnings: list[ConfigError]) -> MqttConfig:
    try:
        host, port, tls = parse_mqtt_url(reader.require("url", checks.text))
    except ValueError as exc:
        raise reader.error("url", str(exc)) from None
    password_file = reader.get("password_file", checks.text, None)
    password = None
    if password_file is not None:
        # Relative to the configuration file, like emoncms.apikey_file.
        password = _read_key(str(Path(file).parent / password_file), reader, key_required, warnings,
                             "password_file") or None
    files = {}
    for key in ("ca_file", "certfile", "keyfile"):
        value = reader.get(key, checks.text, None)
        if value is not None and not tls:
            raise reader.error(key, "is only used with an mqtts:// url")
        files[key] = None if value is None else str(Path(file).parent / value)
    if (files["certfile"] is None) != (files["keyfile"] is None):
        raise reader.error("certfile", "set both certfile and keyfile (a client certificate and its key), or neither")
    defaults = MqttConfig(host="", port=0)
    config = MqttConfig(
        host=host,
        port=port,
        tls=tls,
        username=reader.get("username", checks.text, None),
        password=password,
        password_file=password_file,
        client_id=reader.get("client_id", checks.name, None) or f"pvmonit-{socket.gethostname()}",
        topic_prefix=_topic(reader, checks, "topic_prefix", defaults.topic_prefix),
        interval=reader.get("interval", checks.measure("mqtt.interval"), defaults.interval),
        keepalive=reader.get("keepalive", checks.measure("mqtt.keepalive"), defaults.keepalive),
        homeassistant=reader.get("homeassistant", checks.boolean, True),
        discovery_prefix=_topic(reader, checks, "discovery_prefix", defaults.discovery_prefix),
        ca_file=files["ca_file"],
        certfile=files["certfile"],
        keyfile=files["keyfile"],
    )
    reader.finish()
    if password_file is not None and config.username is None:
        raise reader.error("password_file", "needs username")
    return config


def _check_object_ids(file: str, devices: tuple[DeviceConfig, ...], probes: tuple[ProbeConfig, ...]) -> None:
    """Refuse two devices (or probes) whose Home Assistant object ids would be the same: Home Assistant would
    merge them into one device, each overwriting the other's entities."""
    owners: dict[str, str] = {}
    claims = [(f"devices[{i}].{'serial_number' if d.serial_number else 'ble_address' if d.ble_address else 'name'}",
               device_identifier(d.serial_number or "", d.ble_address, d.name)) for i, d in enumerate(devices)]
    claims += [(f"probes[{i}].name", p.name) for i, p in enumerate(probes)]
    for key_path, identifier in claims:
        found = object_id(identifier)
        other = owners.setdefault(found, key_path)
        if other != key_path:
            raise ConfigError(file, key_path, f"its Home Assistant object id {found!r} is also {other}'s: ids are "
                                              "lower case with '_' for other characters; rename one")


def _check_emoncms_org_nodes(file: str, emoncms: EmoncmsConfig, devices: tuple[DeviceConfig, ...]) -> None:
    """emoncms.org allows node names of 16 characters at most (a self-hosted emoncms has no limit): say so
    now rather than through rows emoncms refuses."""
    host = (urlsplit(emoncms.url).hostname or "").lower()
    if host != "emoncms.org" and not host.endswith(".emoncms.org"):
        return
    nodes = [("emoncms.probe_node", emoncms.probe_node)]
    for index, device in enumerate(devices):
        key = "emoncms_node" if device.emoncms_node is not None else "name"
        nodes.append((f"devices[{index}].{key}", device.emoncms_node or device.name))
    for key_path, node in nodes:
        if len(node) > EMONCMS_ORG_NODE_MAX:
            raise ConfigError(file, key_path, f"{node!r} is longer than the {EMONCMS_ORG_NODE_MAX} characters "
                                              "emoncms.org allows in a node name (set a shorter emoncms_node)")


def _check_shared_ports(file: str, devices: tuple[DeviceConfig, ...], probes: tuple[ProbeConfig, ...]) -> None:
    """Refuse a serial probe on a port a device or another probe reads: each reader would get part of the bytes.
    Paths are compared resolved, so a /dev/serial/by-id/ link and its /dev/ttyUSB name are the same port; a
    socket:// or rfc2217:// URL as written."""
    readers: dict[str, str] = {}
    ports = [(f"devices[{i}].port", d.port) for i, d in enumerate(devices) if d.port != "auto"]
    ports += [(f"probes[{i}].port", p.port) for i, p in enumerate(probes) if p.type == "serial"]
    for key_path, port in ports:
        other = readers.setdefault(port if is_remote(port) else os.path.realpath(port), key_path)
        if other != key_path and key_path.startswith("probes"):
            raise ConfigError(file, key_path, f"{port} is also {other}: two readers on one port would each get "
                                              "part of its bytes")


def _check_emoncms_destinations(file: str, emoncms: EmoncmsConfig, devices: tuple[DeviceConfig, ...],
                                probes: tuple[ProbeConfig, ...]) -> None:
    """Refuse two values that would land on the same emoncms node and input: one would overwrite the other.
    Names come from the forwarder's own mapping (`config.emoncms_names`); a device without emoncms_fields may send
    the list of any kind, since its kind is known only once it answers."""
    senders: dict[tuple[str, str], str] = {}

    def claim(node: str, name: str, key_path: str) -> None:
        other = senders.setdefault((node, name), key_path)
        if other != key_path:
            raise ConfigError(file, key_path, f"input {name!r} of emoncms node {node!r} would also come from "
                                              f"{other}: one would overwrite the other")

    for index, device in enumerate(devices):
        node = device_node(device.name, device.emoncms_node)
        key_path = f"devices[{index}].{'emoncms_node' if device.emoncms_node is not None else 'name'}"
        labels = device.emoncms_fields
        if labels is None:
            labels = tuple(label for kind_labels in emoncms.fields.values() for label in kind_labels)
        for label in labels:
            if (name := label_input(label, emoncms.payload)) is not None:
                claim(node, name, key_path)
    probe_node = emoncms_name(emoncms.probe_node)
    for index, probe in enumerate(probes):
        key_path = f"probes[{index}].{'emoncms_input' if probe.emoncms_input is not None else 'name'}"
        for name in probe_inputs(probe.name, probe.emoncms_input, probe.power_voltage, emoncms.payload):
            claim(probe_node, name, key_path)


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

    def number(key: str) -> float:
        return reader.get(key, checks.measure(f"web.{key}"), cast(float, getattr(defaults, key)))

    web = WebConfig(
        listen_address=reader.get("listen_address", checks.listen_address, defaults.listen_address),
        battery_voltage_min=number("battery_voltage_min"),
        battery_voltage_max=number("battery_voltage_max"),
        pv_power_max=number("pv_power_max"),
        consumption_max=number("consumption_max"),
        consumption_warning_ratio=number("consumption_warning_ratio"),
        consumption_alarm_ratio=number("consumption_alarm_ratio"),
        temperature_warning_low=number("temperature_warning_low"),
        temperature_warning_high=number("temperature_warning_high"),
        temperature_alarm_low=number("temperature_alarm_low"),
        temperature_alarm_high=number("temperature_alarm_high"),
    )
    reader.finish()
    if web.battery_voltage_min >= web.battery_voltage_max:
        raise reader.error("battery_voltage_max", "must be greater than battery_voltage_min")
    if not web.consumption_warning_ratio < web.consumption_alarm_ratio <= 1:
        raise reader.error("consumption_alarm_ratio", "needs consumption_warning_ratio < consumption_alarm_ratio "
                                                      f"<= 1, got {web.consumption_warning_ratio:g} and "
                                                      f"{web.consumption_alarm_ratio:g}")
    bounds = (web.temperature_alarm_low, web.temperature_warning_low, web.temperature_warning_high,
              web.temperature_alarm_high)
    if list(bounds) != sorted(set(bounds)):
        raise reader.error("temperature_warning_low", "needs temperature_alarm_low < temperature_warning_low < "
                                                      "temperature_warning_high < temperature_alarm_high, got "
                                                      + ", ".join(f"{b:g}" for b in bounds))
    return web


def _devices(items: list[object], file: str, checks: Checks, stale: float, *, key_required: bool,
             warnings: list[ConfigError]) -> tuple[DeviceConfig, ...]:
    devices: list[DeviceConfig] = []
    seen: dict[str, str] = {}
    first_address: dict[str, int] = {}
    for index, item in enumerate(items):
        reader = Reader(file, item, f"devices[{index}]")
        device = _device(reader, checks, file, stale, key_required=key_required, warnings=warnings)
        if device.name in seen:
            raise reader.error("name", f"duplicate device name {device.name!r} (also {seen[device.name]})")
        seen[device.name] = reader.path
        if device.ble_address:
            _check_bluetooth_device(reader, device, device.ble_address, index, first_address)
        else:
            _check_cable_device(reader, device)
        devices.append(device)
    _check_device_ports(file, devices)
    return tuple(devices)


def _device(reader: Reader, checks: Checks, file: str, stale: float, *, key_required: bool,
            warnings: list[ConfigError]) -> DeviceConfig:
    """One `devices[]` entry as read, every key checked on its own."""
    name = reader.require("name", checks.name)
    ble_address, ble_key = _bluetooth(reader, checks, file, key_required=key_required, warnings=warnings)
    device = DeviceConfig(
        name=name,
        port="" if ble_address else reader.require("port", checks.text),
        serial_number=reader.get("serial_number", checks.text, None),
        stale_timeout=reader.get("stale_timeout", checks.measure("devices[].stale_timeout"), stale),
        emoncms_fields=reader.get("emoncms_fields", checks.labels, None),
        emoncms_node=reader.get("emoncms_node", checks.node, None),
        ble_address=ble_address,
        ble_key=ble_key,
        history=reader.get("history", checks.boolean, True),
        hex_timeout=reader.get("hex_timeout", checks.measure("devices[].hex_timeout"), None),
    )
    reader.finish()
    return device


def _check_bluetooth_device(reader: Reader, device: DeviceConfig, address: str, index: int,
                            first_address: dict[str, int]) -> None:
    """A Bluetooth device: its address used once, and none of the cable's keys."""
    if address in first_address:
        raise reader.error("ble_address", f"{address} is already used by devices[{first_address[address]}]")
    first_address[address] = index
    if device.serial_number:
        raise reader.error("serial_number", "is only used with port: auto")
    if device.hex_timeout is not None:
        raise reader.error("hex_timeout", "is only used with a VE.Direct port (HEX goes over the cable)")


def _check_cable_device(reader: Reader, device: DeviceConfig) -> None:
    """A cable device: a port that can be opened, serial_number only with `auto`."""
    if is_remote(device.port):
        problem = remote_port_problem(device.port)
        if problem:
            raise reader.error("port", problem)
    elif device.port != "auto" and not device.port.startswith("/"):
        raise reader.error("port", f"{device.port!r} must be an absolute path (/dev/ttyUSB0), auto, or a "
                                   "socket://HOST:PORT or rfc2217://HOST:PORT URL")
    if device.serial_number and device.port != "auto":
        raise reader.error("serial_number", "is only used with port: auto")


def _check_device_ports(file: str, devices: list[DeviceConfig]) -> None:
    """At most one `auto` device without a serial number, and no fixed port used twice."""
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


def _probes(items: list[object], file: str, checks: Checks) -> tuple[ProbeConfig, ...]:
    probes: list[ProbeConfig] = []
    names: set[str] = set()
    for index, item in enumerate(items):
        reader = Reader(file, item, f"probes[{index}]")
        kind = reader.require("type", checks.choice(PROBE_TYPES))
        for key in PROBE_KEYS_NOT_APPLICABLE[kind]:
            if key in reader.data:
                raise reader.error(key, f"does not apply to a {kind} probe")
        quantity = reader.require("quantity", checks.choice(PROBE_QUANTITIES))
        probe = ProbeConfig(
            name=reader.require("name", checks.name),
            type=cast(Literal["command", "serial", "w1", "file"], kind),
            quantity=cast(Literal["temperature", "current", "power"], quantity),
            interval=reader.get("interval", checks.measure("probes[].interval"), 60.0),
            timeout=reader.get("timeout", checks.measure("probes[].timeout"), 10.0),
            command=reader.get("command", checks.argv, ()) if kind == "command" else (),
            port=reader.get("port", checks.text, "") if kind == "serial" else "",
            baud=reader.get("baud", checks.whole("probes[].baud"), 9600) if kind == "serial" else 9600,
            path=reader.get("path", checks.text, "") if kind in ("file", "w1") else "",
            scale=reader.get("scale", checks.measure("probes[].scale"), 1.0),
            offset=reader.get("offset", checks.measure("probes[].offset"), 0.0),
            min=reader.get("min", checks.measure("probes[].min"), None),
            max=reader.get("max", checks.measure("probes[].max"), None),
            power_voltage=reader.get("power_voltage", checks.measure("probes[].power_voltage"), None),
            power_max=reader.get("power_max", checks.measure("probes[].power_max"), None),
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
        if probe.power_max is not None and probe.power_voltage is None:
            raise reader.error("power_max", "needs power_voltage (it bounds amperes × power_voltage, in watts)")
        names.add(probe.name)
        probes.append(probe)
    return tuple(probes)


# Paths of emoncms's input API (PvMonit's $EMONCMS_URL_INPUT_JSON_POST): pasted as emoncms.url, they would be
# accepted and every post would then go to `…/input/post.json/input/bulk.json`.
_INPUT_API_PATH_RE = re.compile(r"/input/(?:post|bulk)(?:\.json)?$", re.IGNORECASE)


def _input_api(url: str) -> tuple[str, str] | None:
    """(the endpoint, the emoncms base URL) when `url` is one of emoncms's input API endpoints, else None."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if (match := _INPUT_API_PATH_RE.search(path)) is None:
        return None
    return match.group(), f"{parts.scheme}://{parts.netloc}{path[:match.start()]}/"


def _url_problem(url: str) -> str | None:
    """Why `url` is not a usable emoncms address, or None. The URL is parsed (never matched with a pattern), and
    every message shows it with its credentials masked, or not at all when they cannot be told apart."""
    if (problem := url_credentials_problem(url)) is not None:
        return problem  # the URL is not shown: where its password ends is unknown
    shown = mask_url(url)
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not url.lower().startswith(f"{parts.scheme.lower()}://"):
        return f"{shown!r} must start with http:// or https://"
    if any(not char.isprintable() or char.isspace() for char in url):
        return (f"{shown!r} holds a space or a control character: percent-encode it (a space in a password is "
                "%20)")
    if (api := _input_api(url)) is not None:  # the query is not shown: it may hold the key
        endpoint, base = api
        return (f"ends in {endpoint!r}, an input API address; the exporter wants emoncms's own address and adds "
                f"the API itself: did you mean {mask_url(base)!r}?")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        return (f"{shown!r} has a query ('?') or a fragment ('#'): give emoncms's address alone (the key goes in "
                "apikey or apikey_file; a password holding '?' or '#' must be percent-encoded: %3F, %23)")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if not parts.hostname or port in (0, -1):
        return f"{shown!r} must name a host, and a port from 1 to 65535 if any"
    return None


def _emoncms(reader: Reader, checks: Checks, file: str, mqtt: MqttConfig | None, *, key_required: bool,
             warnings: list[ConfigError]) -> EmoncmsConfig:
    via = reader.get("via", checks.choice(("http", "mqtt")), "http")
    if via == "mqtt":
        return _emoncms_via_mqtt(reader, checks, file, mqtt)
    if "topic" in reader.data:
        raise reader.error("topic", "is only used with via: mqtt")
    url = reader.require("url", checks.text).rstrip("/")
    if (problem := _url_problem(url)) is not None:
        raise reader.error("url", problem)
    inline = reader.get("apikey", checks.text, None)
    key_file = reader.get("apikey_file", checks.text, None)
    if (inline is None) == (key_file is None):
        raise reader.error("apikey", "set exactly one of apikey or apikey_file")
    # A relative apikey_file is relative to the configuration file, not to wherever the daemon was started.
    key_path = Path(file).parent / (key_file or "")
    apikey = inline if inline is not None else _read_key(str(key_path), reader, key_required, warnings)
    if apikey and (problem := emoncms_key_problem(apikey)) is not None:
        raise reader.error("apikey" if inline is not None else "apikey_file", problem)
    config = _emoncms_rows(reader, checks, file, url, apikey)
    reader.finish()
    return config


def _emoncms_via_mqtt(reader: Reader, checks: Checks, file: str, mqtt: MqttConfig | None) -> EmoncmsConfig:
    """`via: mqtt`: the rows go to `<topic>/<node>` on the mqtt section's broker; no url and no key."""
    if mqtt is None:
        raise reader.error("via", "mqtt needs an mqtt section (the broker to send the rows to)")
    for key in ("url", "apikey", "apikey_file"):
        if key in reader.data:
            raise reader.error(key, "is not used with via: mqtt (the rows go to the mqtt section's broker)")
    topic = _topic(reader, checks, "topic", DEFAULT_EMONCMS_TOPIC)
    config = _emoncms_rows(reader, checks, file, f"{mqtt.url}/{topic}", "")
    reader.finish()
    return dataclasses.replace(config, via="mqtt", topic=topic)


def _emoncms_rows(reader: Reader, checks: Checks, file: str, url: str, apikey: str) -> EmoncmsConfig:
    """The settings of the queue and its rows, the same whichever way they travel."""
    defaults = EmoncmsConfig(url="", apikey="", queue_dir=Path())
    fields_reader = reader.get("fields", lambda v, p: Reader(file, v, p), None)
    kind_fields = dict(DEFAULT_EMONCMS_FIELDS)
    if fields_reader is not None:
        for kind in DEFAULT_EMONCMS_FIELDS:
            kind_fields[kind] = fields_reader.get(kind, checks.labels, kind_fields[kind])
        fields_reader.finish()
    return EmoncmsConfig(
        url=url,
        apikey=apikey,
        # Relative to the configuration file, like apikey_file: the daemon's working directory is `/`.
        queue_dir=Path(file).parent / reader.require("queue_dir", checks.text),
        interval=reader.get("interval", checks.measure("emoncms.interval"), defaults.interval),
        batch_size=reader.get("batch_size", checks.whole("emoncms.batch_size"), defaults.batch_size),
        max_queue_rows=reader.get("max_queue_rows", checks.whole("emoncms.max_queue_rows"),
                                    defaults.max_queue_rows),
        payload=cast(Literal["pvmonit", "si"], reader.get("payload", checks.choice(PAYLOADS), "pvmonit")),
        timeout=reader.get("timeout", checks.measure("emoncms.timeout"), defaults.timeout),
        probe_node=reader.get("probe_node", checks.node, defaults.probe_node),
        fields=kind_fields,
    )


def _read_key(path: str, reader: Reader, required: bool, warnings: list[ConfigError],
              name: str = "apikey_file") -> str:
    """The key in `path` (the value of key `name`); "" with a warning when it is absent or unreadable and not
    `required`."""
    credential = _is_credential(path)
    try:
        key = _read_text(path, MAX_KEY_FILE_BYTES, "a key file").strip()
    except _UnreadableError as exc:
        if not required and (exc.absent or exc.denied):
            warnings.append(reader.error(name, _why_unreadable(path, exc, credential=credential)))
            return ""
        hint = ""
        if exc.absent and credential:
            hint = (" (systemd creates it from LoadCredential= only inside the running service: start the service, "
                    f"or point {name} at the key file itself)")
        raise reader.error(name, f"cannot read {path}: {exc}{hint}") from None
    if not key:
        raise reader.error(name, f"{path} is empty")
    return key


def _bluetooth(reader: Reader, checks: Checks, file: str, *, key_required: bool,
               warnings: list[ConfigError]) -> tuple[str | None, bytes | None]:
    """A device's `ble_address` and its key (`ble_key`, or `ble_key_file` read like emoncms.apikey_file: when
    not `key_required`, an unreadable file is a warning and the key None)."""
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
    text = inline if inline is not None else _read_key(str(Path(file).parent / (key_file or "")), reader,
                                                       key_required, warnings, where)
    if not text:
        return address, None
    try:
        return address, parse_key(text)
    except ValueError as exc:
        raise reader.error(where, str(exc)) from None


def _is_credential(path: str) -> bool:
    """Whether `path` is a systemd credential (LoadCredential=), which exists only for the running service."""
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    return path.startswith("/run/credentials/") or (bool(directory) and Path(path).is_relative_to(str(directory)))


def _why_unreadable(path: str, exc: _UnreadableError, *, credential: bool) -> str:
    if credential and exc.absent:
        return (f"{path} is absent: expected while the service is stopped, as systemd creates it from "
                "LoadCredential= only for the running service; `run` outside the service will not start without it")
    if credential:
        return (f"{path} cannot be read by this user: only the running service (and root) may read its "
                "credentials; `run` outside the service will not start without it")
    if exc.absent:
        return f"{path} is absent: `run` will not start until it exists"
    return (f"{path} cannot be read by this user (uid {os.geteuid()}): the service's user may still read it; "
            "`run` as this user will not start")
