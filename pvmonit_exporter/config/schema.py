"""The settings a configuration file describes: typed, frozen dataclasses and their defaults.

The keys are documented, one by one, in `config.yaml.example`.
"""

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pvmonit_exporter.vedirect.hex_session import DEFAULT_TIMEOUT as CABLE_HEX_TIMEOUT

DEFAULT_PORT = 9737
DEFAULT_LISTEN_ADDRESS = f":{DEFAULT_PORT}"
DEFAULT_STALE_TIMEOUT = 5.0

# Where `port: auto` looks: Victron's own VE.Direct cables. A scan opens every port it looks at and sets it to
# 19200 baud while it listens, so another port (a GPS, a meter, a modem) is scanned only when the user lists it.
DEFAULT_AUTO_PORT_PATTERNS: tuple[str, ...] = ("/dev/serial/by-id/usb-VictronEnergy*",)

PROBE_TYPES = ("command", "serial", "w1", "file")
PROBE_QUANTITIES = ("temperature", "current", "power")
PAYLOADS = ("pvmonit", "si")

# PvMonit 0.2's field lists (`config-default.php`, the version its README documents), so that existing emoncms
# inputs keep filling. Its BMV list spelt H14 `h14`, so H14 was never sent: nor is it here. Its inverter list
# ($VEDIRECT_PHOENIX_DATA) was never used (PvMonit posted an inverter's row empty); it is the default here.
# PvMonit had no charger kind: ours sends its state and battery side.
DEFAULT_EMONCMS_FIELDS: Mapping[str, tuple[str, ...]] = {
    "mppt": ("CS", "PPV", "V", "ERR", "I", "VPV", "H19", "H20", "H21", "H22", "H23"),
    "bmv": ("V", "VS", "VM", "DM", "I", "T", "P", "CE", "SOC", "TTG", "Alarm", "AR",
            *(f"H{n}" for n in range(1, 19) if n != 14)),
    "inverter": ("P", "CS", "MODE", "AC_OUT_V", "AC_OUT_I", "WARN"),
    "charger": ("CS", "ERR", "V", "I"),
    "unknown": (),
}
# The emonPi/emoncms MQTT input's base topic (emoncms_mqtt.php).
DEFAULT_EMONCMS_TOPIC = "emon"
MQTT_SCHEMES = {"mqtt": 1883, "mqtts": 8883}
# PvMonit's node for the probes (temperature and consumption).
DEFAULT_PROBE_NODE = "1"
# emoncms.org's limit on node names; a self-hosted emoncms has none.
EMONCMS_ORG_NODE_MAX = 16


@dataclass(frozen=True)
class WebConfig:
    listen_address: str = DEFAULT_LISTEN_ADDRESS
    # Ranges of the live page's bars (PvMonit's gauge maxima).
    battery_voltage_min: float = 11.0
    battery_voltage_max: float = 15.0
    pv_power_max: float = 400.0  # per solar charger: the summary's PV gauge ends at this × the chargers
    consumption_max: float = 1500.0
    # The summary's colours (PvMonit's): consumption orange above 50 % of consumption_max and red above 80 %;
    # temperature orange at or beyond the warning bounds, red at or beyond the alarm bounds.
    consumption_warning_ratio: float = 0.5
    consumption_alarm_ratio: float = 0.8
    temperature_warning_low: float = 10.0
    temperature_warning_high: float = 26.0
    temperature_alarm_low: float = 5.0
    temperature_alarm_high: float = 30.0


@dataclass(frozen=True)
class DeviceConfig:
    name: str
    port: str  # a path, or "auto"; "" for a Bluetooth device
    serial_number: str | None = None
    stale_timeout: float = DEFAULT_STALE_TIMEOUT
    emoncms_fields: tuple[str, ...] | None = None  # None: the defaults for the device's kind
    emoncms_node: str | None = None  # None: the device's name
    history: bool = True  # read the charger's daily history over HEX (read-only, harmless)
    hex_timeout: float | None = None  # seconds a HEX request waits for its answer; None: the port's default
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
    power_max: float | None = None  # watts (with power_voltage): a reading whose power is above is dropped
    emoncms_input: str | None = None  # input name under the probe node; default: the probe's name


@dataclass(frozen=True)
class EmoncmsConfig:
    url: str  # with `via: mqtt`, the broker's URL and the topic (`mqtt://host:1883/emon`), for display only
    apikey: str = field(repr=False)
    queue_dir: Path
    interval: float = 300.0
    batch_size: int = 500
    max_queue_rows: int = 500_000
    payload: Literal["pvmonit", "si"] = "pvmonit"
    timeout: float = 30.0
    probe_node: str = DEFAULT_PROBE_NODE
    fields: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_EMONCMS_FIELDS))
    via: Literal["http", "mqtt"] = "http"  # mqtt: the rows go to `<topic>/<node>` on the mqtt section's broker
    topic: str = DEFAULT_EMONCMS_TOPIC


@dataclass(frozen=True)
class MqttConfig:
    """The broker the `mqtt/` publisher (and `emoncms: via: mqtt`) talks to."""

    host: str
    port: int
    tls: bool = False  # mqtts://
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # from password_file: a secret
    password_file: str | None = None
    client_id: str = ""  # "" until the loader fills in pvmonit-<hostname>
    topic_prefix: str = "pvmonit"
    interval: float = 10.0
    keepalive: float = 60.0
    homeassistant: bool = True
    discovery_prefix: str = "homeassistant"
    ca_file: str | None = None
    certfile: str | None = None
    keyfile: str | None = None

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


# --- switching loads (`control`, `actuators`, `rules`) -------------------------------------------------------

ACTUATOR_TYPES = ("command", "gpio", "vedirect_load", "mqtt")
RULE_MODES = ("auto", "on", "off")
COMPARISONS = ("at_least", "above", "below", "at_most", "in")
# The keys of /api/state's summary a rule may read (`summary.<key>`).
SUMMARY_INPUTS = ("battery_soc", "battery_voltage", "pv_power", "consumption", "temperature")
DEFAULT_MAX_SWITCHES_PER_HOUR = 6
DEFAULT_DATA_LOSS_AFTER = 120.0
DEFAULT_MAX_AGE = 60.0


@dataclass(frozen=True)
class ControlConfig:
    dry_run: bool = True  # nothing switches unless the file says `dry_run: false`
    interval: float = 10.0
    audit_file: Path | None = None


@dataclass(frozen=True)
class ActuatorConfig:
    name: str
    type: Literal["command", "gpio", "vedirect_load", "mqtt"]
    on: tuple[str, ...] = ()  # command: argv, run without a shell
    off: tuple[str, ...] = ()
    state: tuple[str, ...] = ()  # command: optional read-back, prints on or off
    timeout: float = 10.0  # command: seconds before a command counts as failed
    confirm_timeout: float = 5.0  # seconds a read-back has to agree after a switch
    pin: int | None = None  # gpio: BCM pin number
    active_low: bool = False  # gpio: the relay board switches on when the pin is low
    device: str = ""  # vedirect_load: the solar charger's device name
    # mqtt, as Home Assistant's MQTT switch: the payloads sent on command_topic, those read on state_topic.
    command_topic: str = ""
    state_topic: str = ""
    payload_on: str = "ON"
    payload_off: str = "OFF"
    state_on: str = "ON"
    state_off: str = "OFF"


@dataclass(frozen=True)
class Comparison:
    """`value` compared with `op` to `threshold` (a number), or, with `in`, to any of `choices`."""

    value: str  # summary.<key>, <device>.<LABEL> or <probe>
    op: Literal["at_least", "above", "below", "at_most", "in"]
    threshold: float = 0.0
    choices: tuple[str | float, ...] = ()


@dataclass(frozen=True)
class Condition:
    """`all` or `any` of its items (comparisons or other conditions)."""

    combine: Literal["all", "any"]
    items: tuple["Comparison | Condition", ...]


@dataclass(frozen=True)
class RuleConfig:
    actuator: str
    mode: Literal["auto", "on", "off"] = "auto"
    on_when: "Comparison | Condition | None" = None
    off_when: "Comparison | Condition | None" = None  # None: off once on_when no longer holds
    on_for: float = 0.0
    off_for: float = 0.0
    min_on: float = 0.0
    min_off: float = 0.0
    max_on_per_day: float | None = None
    window: tuple[str, str] | None = None  # local "HH:MM" start and end; may run across midnight
    max_age: float = DEFAULT_MAX_AGE
    data_loss_after: float = DEFAULT_DATA_LOSS_AFTER
    max_switches_per_hour: int = DEFAULT_MAX_SWITCHES_PER_HOUR


@dataclass(frozen=True)
class Config:
    devices: tuple[DeviceConfig, ...]
    probes: tuple[ProbeConfig, ...] = ()
    emoncms: EmoncmsConfig | None = None
    web: WebConfig = WebConfig()
    mqtt: MqttConfig | None = None
    stale_timeout: float = DEFAULT_STALE_TIMEOUT
    auto_port_patterns: tuple[str, ...] = DEFAULT_AUTO_PORT_PATTERNS
    control: ControlConfig = ControlConfig()
    actuators: tuple[ActuatorConfig, ...] = ()
    rules: tuple[RuleConfig, ...] = ()
    source: str = "<built-in>"
    # What the loader noticed without refusing the file (a key file absent while the service is stopped).
    warnings: tuple[str, ...] = field(default=(), compare=False)


def _keys(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(cls))


# The keys each mapping of a file may hold, by its place (`[]`: any item of a list). A key is a field of the
# section's dataclass unless it is listed here as read differently (apikey_file, ble_key_file) or not a key at
# all (source, warnings).
SECTION_KEYS: Mapping[str, frozenset[str]] = {
    "": _keys(Config) - {"source", "warnings"},
    "web": _keys(WebConfig),
    "devices[]": _keys(DeviceConfig) | {"ble_key_file"},
    "probes[]": _keys(ProbeConfig),
    "emoncms": _keys(EmoncmsConfig) | {"apikey_file"},
    "mqtt": (_keys(MqttConfig) - {"host", "port", "tls", "password"}) | {"url"},
    "emoncms.fields": frozenset(DEFAULT_EMONCMS_FIELDS),
    "control": _keys(ControlConfig),
    "actuators[]": _keys(ActuatorConfig),
    "rules[]": _keys(RuleConfig),
}
# Lists of VE.Direct labels (`*`: any key of that mapping).
LABEL_LISTS = ("devices[].emoncms_fields", "emoncms.fields.*")

# Actuator keys that mean nothing for a type: refused in a file, left out of `check-config` output.
ACTUATOR_KEYS: Mapping[str, tuple[str, ...]] = {
    "command": ("on", "off", "state", "timeout", "confirm_timeout"),
    "gpio": ("pin", "active_low", "confirm_timeout"),
    "vedirect_load": ("device", "confirm_timeout"),
    "mqtt": ("command_topic", "state_topic", "payload_on", "payload_off", "state_on", "state_off",
             "confirm_timeout"),
}

# Probe keys that mean nothing for a type: refused in a file, left out of `check-config` output.
PROBE_KEYS_NOT_APPLICABLE: Mapping[str, tuple[str, ...]] = {
    "command": ("port", "baud", "path"),
    "serial": ("command", "path"),
    "w1": ("command", "port", "baud"),
    "file": ("command", "port", "baud"),
}


@dataclass(frozen=True)
class Bounds:
    """The values a number may take, both ends included; `whole`: an integer."""

    low: float
    high: float
    unit: str = ""
    whole: bool = False

    def describe(self) -> str:
        """`1 to 86,400 s`, as docs/configuration.md and config.yaml.example write it."""
        unit = f" {self.unit}" if self.unit else ""
        return f"{format_number(self.low)} to {format_number(self.high)}{unit}"


def format_number(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:g}"


_SECONDS_A_DAY = 86_400.0
_CALIBRATION = Bounds(-1e9, 1e9)
_TEMPERATURE = Bounds(-100, 200, "°C")
# Every number a file may hold, by its place (`[]`: any item of a list). Beyond these a value could overflow a
# socket timeout or time arithmetic and kill the thread using it, or make the forwarder load the whole queue into
# one request; within them everything works. Documented in config.yaml.example and docs/configuration.md.
BOUNDS: Mapping[str, Bounds] = {
    "stale_timeout": Bounds(1, _SECONDS_A_DAY, "s"),
    "devices[].stale_timeout": Bounds(1, _SECONDS_A_DAY, "s"),
    # From a cable's 40 ms answer with room to spare, to a bridge far away; 3 tries each.
    "devices[].hex_timeout": Bounds(0.1, 60, "s"),
    "web.battery_voltage_min": Bounds(0, 1000, "V"),
    "web.battery_voltage_max": Bounds(0, 1000, "V"),
    "web.pv_power_max": Bounds(1, 1e6, "W"),
    "web.consumption_max": Bounds(1, 1e6, "W"),
    "web.consumption_warning_ratio": Bounds(0.01, 1),
    "web.consumption_alarm_ratio": Bounds(0.01, 1),
    "web.temperature_warning_low": _TEMPERATURE,
    "web.temperature_warning_high": _TEMPERATURE,
    "web.temperature_alarm_low": _TEMPERATURE,
    "web.temperature_alarm_high": _TEMPERATURE,
    "probes[].interval": Bounds(0.1, _SECONDS_A_DAY, "s"),
    "probes[].timeout": Bounds(0.1, 3600, "s"),
    "probes[].baud": Bounds(50, 4_000_000, whole=True),
    "probes[].scale": _CALIBRATION,
    "probes[].offset": _CALIBRATION,
    "probes[].min": _CALIBRATION,
    "probes[].max": _CALIBRATION,
    "probes[].power_voltage": Bounds(1, 1000, "V"),
    "probes[].power_max": Bounds(1, 1e6, "W"),
    "control.interval": Bounds(0.1, 3600, "s"),
    "actuators[].timeout": Bounds(0.1, 600, "s"),
    "actuators[].confirm_timeout": Bounds(0.1, 3600, "s"),
    "actuators[].pin": Bounds(0, 27, whole=True),  # the Raspberry Pi's BCM GPIO numbers
    "rules[].on_for": Bounds(0, _SECONDS_A_DAY, "s"),
    "rules[].off_for": Bounds(0, _SECONDS_A_DAY, "s"),
    "rules[].min_on": Bounds(0, _SECONDS_A_DAY, "s"),
    "rules[].min_off": Bounds(0, _SECONDS_A_DAY, "s"),
    "rules[].max_on_per_day": Bounds(0, _SECONDS_A_DAY, "s"),
    "rules[].max_age": Bounds(0.1, _SECONDS_A_DAY, "s"),
    "rules[].data_loss_after": Bounds(0.1, _SECONDS_A_DAY, "s"),
    "rules[].max_switches_per_hour": Bounds(1, 3600, whole=True),
    "emoncms.interval": Bounds(1, _SECONDS_A_DAY, "s"),
    "emoncms.timeout": Bounds(1, 600, "s"),
    # emonhub sends at most 1,000 rows a request; 10,000 rows stay far below PHP's 8 MB post_max_size.
    "emoncms.batch_size": Bounds(1, 10_000, "rows", whole=True),
    # 10 million rows of 188 bytes: about 2 GB of disk, 30 years of 3 devices every 5 minutes.
    "emoncms.max_queue_rows": Bounds(100, 10_000_000, "rows", whole=True),
    "mqtt.interval": Bounds(1, 300, "s"),
    "mqtt.keepalive": Bounds(5, 600, "s"),
}


# A port may be a URL pyserial understands: a TCP serial bridge (ser2net, an ESP32) or an RFC 2217 server.
REMOTE_SCHEMES = ("socket://", "rfc2217://")


def is_remote(port: str) -> bool:
    return port.startswith(REMOTE_SCHEMES)


# How long a HEX request waits for its answer through a TCP bridge (ser2net, an ESP32 on Wi-Fi) before it is sent
# again (3 tries). The request and its answer also cross the network and the bridge's buffers, and a Wi-Fi
# station in power save wakes only every few hundred milliseconds; on a cable a device answers within 40 ms.
REMOTE_HEX_TIMEOUT = 2.0


def hex_timeout(port: str, configured: float | None = None) -> float:
    """How long a HEX request on `port` waits for its answer: `configured` (a device's `hex_timeout`), else the
    default for a remote port or for a cable."""
    if configured is not None:
        return configured
    return REMOTE_HEX_TIMEOUT if is_remote(port) else CABLE_HEX_TIMEOUT


def remote_port_problem(url: str) -> str | None:
    """Why `url` is not a usable `socket://HOST:PORT` or `rfc2217://HOST:PORT`; None when it is."""
    scheme, _, rest = url.partition("://")
    host, colon, number = rest.rpartition(":")
    if not colon or not host or "/" in rest or "?" in rest or not number.isdigit() or not 0 < int(number) < 65536:
        return f"{url!r} must be {scheme}://HOST:PORT (a host name or address, a port from 1 to 65535)"
    return None
