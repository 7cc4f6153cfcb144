"""The systemd units (verified and scored by systemd-analyze) and the udev rule for VE.Direct cables."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import require_tool
from tests.ops import AGENT_CONFIG, AGENT_UNIT, REPO, UDEV_RULES, UNIT, load_yaml

INSTALLED_BINARY = "/opt/pvmonit-exporter/bin/pvmonit-exporter"
EXEC_START = f"{INSTALLED_BINARY} run --config.file /etc/pvmonit-exporter/config.yaml"
MAX_EXPOSURE = 2.0


def _directives(path: Path) -> list[tuple[str, str, str]]:
    """(section, key, value) in file order; repeated keys stay repeated, as systemd reads them."""
    section = ""
    found = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not a directive: {raw!r}"
        found.append((section, key.strip(), value.strip()))
    return found


def _values(key: str, section: str = "Service", unit: Path = UNIT) -> list[str]:
    return [value for sec, name, value in _directives(unit) if sec == section and name == key]


def _value(key: str, section: str = "Service", unit: Path = UNIT) -> str:
    values = _values(key, section, unit)
    assert len(values) == 1, f"{key}: {values}"
    return values[0]


def _analyze(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_tool("systemd-analyze"), *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=cwd, check=False)


@pytest.fixture
def verifiable_unit(tmp_path: Path) -> Path:
    """A copy whose ExecStart names a binary that exists here (verify checks that it is executable)."""
    binary = Path(sys.executable).with_name("pvmonit-exporter")
    if not binary.exists():
        binary = Path(shutil.which("pvmonit-exporter") or sys.executable)
    text = UNIT.read_text(encoding="utf-8")
    assert INSTALLED_BINARY in text
    copy = tmp_path / UNIT.name
    copy.write_text(text.replace(INSTALLED_BINARY, str(binary)), encoding="utf-8")
    return copy


@pytest.mark.slow
def test_unit_verifies_without_warnings(verifiable_unit: Path) -> None:
    result = _analyze("verify", verifiable_unit, cwd=verifiable_unit.parent)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


@pytest.mark.slow
def test_verify_would_notice_a_mistake(verifiable_unit: Path) -> None:
    """The check above can fail: a misspelt hardening option is reported on stderr."""
    text = verifiable_unit.read_text(encoding="utf-8")
    verifiable_unit.write_text(text.replace("ProtectSystem=strict", "ProtectSytem=strict"), encoding="utf-8")
    result = _analyze("verify", verifiable_unit, cwd=verifiable_unit.parent)
    assert "ProtectSytem" in result.stderr


def _exposure(unit: Path) -> float:
    result = _analyze("security", "--offline=true", "--no-pager", unit, cwd=unit.parent)
    output = result.stdout + result.stderr
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", output)
    assert match, output
    return float(match.group(1))


@pytest.mark.slow
def test_security_exposure(tmp_path: Path) -> None:
    exposure = _exposure(UNIT)
    assert exposure <= MAX_EXPOSURE
    # ...and the score reacts to the hardening (so the parse above reads the right figure).
    weakened = tmp_path / UNIT.name
    text = UNIT.read_text(encoding="utf-8")
    for option in ("ProtectSystem=strict", "NoNewPrivileges=yes", "SystemCallFilter=@system-service",
                   "DynamicUser=yes", "ProtectHome=yes"):
        text = text.replace(option, "")
    weakened.write_text(text, encoding="utf-8")
    assert _exposure(weakened) > exposure


def test_unit_runs_the_installed_exporter() -> None:
    assert _value("ExecStart") == EXEC_START
    assert _value("Restart") == "on-failure"
    assert _value("RestartSec") == "5"
    assert _value("WantedBy", "Install") == "multi-user.target"


def test_unit_identity_and_directories() -> None:
    assert _value("DynamicUser") == "yes"
    assert "dialout" in _value("SupplementaryGroups").split()
    assert _value("StateDirectory") == "pvmonit-exporter"
    assert _value("ConfigurationDirectory") == "pvmonit-exporter"
    # The example configuration puts the queue in the state directory, the one place the service may write.
    example = load_yaml(REPO / "config.yaml.example")
    assert example["emoncms"]["queue_dir"] == "/var/lib/pvmonit-exporter/queue"


def test_unit_device_access() -> None:
    assert _value("DevicePolicy") == "closed"
    allowed = {tuple(value.split()) for value in _values("DeviceAllow")}
    assert {("char-ttyUSB", "rw"), ("char-ttyACM", "rw")} <= allowed
    # A private /dev would hide the serial ports and their /dev/serial/by-id links.
    assert _values("PrivateDevices") in ([], ["no"])


def test_unit_hardening() -> None:
    expected = {
        "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
        "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes", "ProtectControlGroups": "yes",
        "RestrictNamespaces": "yes", "LockPersonality": "yes", "MemoryDenyWriteExecute": "yes",
        "RestrictSUIDSGID": "yes", "CapabilityBoundingSet": "", "SystemCallArchitectures": "native",
    }
    for key, value in expected.items():
        assert _value(key) == value, key
    assert "@system-service" in _values("SystemCallFilter")
    # /proc/stat must stay readable: the process_* metrics (and the EmoncmsNoSuccess alert) need it.
    assert _values("ProcSubset") in ([], ["all"])


# --- the Bluetooth drop-in ------------------------------------------------------------------------------------

BLUETOOTH_DROP_IN = UNIT.with_suffix(".service.d") / "bluetooth.conf"


def test_the_bluetooth_drop_in_only_adds_the_bluetooth_group() -> None:
    assert _directives(BLUETOOTH_DROP_IN) == [("Service", "SupplementaryGroups", "bluetooth")]
    # Talking to BlueZ over the system D-Bus needs its socket family from the unit, nothing more.
    assert "AF_UNIX" in _value("RestrictAddressFamilies").split()


@pytest.mark.slow
def test_the_unit_with_the_bluetooth_drop_in_verifies_and_keeps_its_exposure(verifiable_unit: Path) -> None:
    # systemd merges a drop-in's lines into the unit's sections: appending them gives the same unit.
    drop_in = BLUETOOTH_DROP_IN.read_text(encoding="utf-8")
    verifiable_unit.write_text(verifiable_unit.read_text(encoding="utf-8") + "\n" + drop_in, encoding="utf-8")
    result = _analyze("verify", verifiable_unit, cwd=verifiable_unit.parent)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr
    assert _exposure(verifiable_unit) <= MAX_EXPOSURE


# --- the site's agent (Prometheus in agent mode) -------------------------------------------------------------

AGENT_BINARY = "/usr/bin/prometheus"


def _agent_flags() -> dict[str, str]:
    binary, *flags = _value("ExecStart", unit=AGENT_UNIT).split()
    assert binary == AGENT_BINARY, "Debian's prometheus package"
    return dict(flag.partition("=")[::2] for flag in flags)


@pytest.fixture
def verifiable_agent_unit(tmp_path: Path) -> Path:
    text = AGENT_UNIT.read_text(encoding="utf-8")
    copy = tmp_path / AGENT_UNIT.name
    copy.write_text(text.replace(AGENT_BINARY, require_tool("prometheus")), encoding="utf-8")
    return copy


@pytest.mark.slow
def test_agent_unit_verifies_without_warnings(verifiable_agent_unit: Path) -> None:
    result = _analyze("verify", verifiable_agent_unit, cwd=verifiable_agent_unit.parent)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


@pytest.mark.slow
def test_agent_unit_security_exposure(verifiable_agent_unit: Path) -> None:
    assert _exposure(verifiable_agent_unit) <= MAX_EXPOSURE


def test_agent_unit_runs_prometheus_in_agent_mode() -> None:
    flags = _agent_flags()
    assert flags["--enable-feature"] == "agent"
    assert flags["--config.file"] == f"/etc/{_value('ConfigurationDirectory', unit=AGENT_UNIT)}/{AGENT_CONFIG.name}"
    # The WAL lives in the state directory: on disk, kept across reboots, the one place the agent may write.
    assert flags["--storage.agent.path"] == f"/var/lib/{_value('StateDirectory', unit=AGENT_UNIT)}"
    assert flags["--web.listen-address"].startswith("127.0.0.1:"), "the agent's page stays on the Pi"
    assert _value("Restart", unit=AGENT_UNIT) == "on-failure"
    assert _value("WantedBy", "Install", unit=AGENT_UNIT) == "multi-user.target"


def test_agent_password_comes_from_the_units_credential() -> None:
    """agent.yml reads the password where systemd puts the credential the unit loads."""
    name, _, source = _value("LoadCredential", unit=AGENT_UNIT).partition(":")
    assert source.startswith("/etc/pvmonit-agent/")
    (remote,) = load_yaml(AGENT_CONFIG)["remote_write"]
    assert remote["basic_auth"]["password_file"] == f"/run/credentials/{AGENT_UNIT.name}/{name}"


# --- udev --------------------------------------------------------------------------------------------------------

_UDEV_KEY = re.compile(
    r'\s*(?P<key>[A-Z_]+)(?:\{(?P<attr>[^}]+)\})?\s*(?P<op>==|!=|\+=|-=|:=|=)\s*"(?P<value>[^"]*)"\s*'
)
_MATCH_OPS, _ASSIGN_OPS = ("==", "!="), ("=", "+=", "-=", ":=")
_MATCH_KEYS = {"ACTION", "SUBSYSTEM", "SUBSYSTEMS", "KERNEL", "KERNELS", "ATTRS", "ATTR", "ENV", "DRIVERS", "TAG"}
_ASSIGN_KEYS = {"SYMLINK", "GROUP", "MODE", "OWNER", "TAG", "ENV", "GOTO", "LABEL", "RUN", "IMPORT"}


def _udev_rules() -> list[list[tuple[str, str | None, str, str]]]:
    """Each rule as its (key, attribute, operator, value) list; fails on anything udev would not parse."""
    rules = []
    for number, raw in enumerate(UDEV_RULES.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        assert not line.endswith("\\"), "keep each rule on one line"
        items = []
        for part in line.split(","):
            match = _UDEV_KEY.fullmatch(part)
            assert match, f"line {number}: cannot parse {part!r}"
            key, op = match["key"], match["op"]
            if op in _MATCH_OPS:
                assert key in _MATCH_KEYS, f"line {number}: {key} is not a match key"
            else:
                assert key in _ASSIGN_KEYS, f"line {number}: {key} cannot be assigned"
            items.append((key, match["attr"], op, match["value"]))
        rules.append(items)
    return rules


def test_udev_rule_names_victron_cables() -> None:
    rules = _udev_rules()
    labels = {value for rule in rules for key, _, _, value in rule if key == "LABEL"}
    gotos = {value for rule in rules for key, _, _, value in rule if key == "GOTO"}
    assert gotos <= labels, "every GOTO needs its LABEL"
    naming = [rule for rule in rules if any(key == "SYMLINK" for key, _, _, _ in rule)]
    assert len(naming) == 1
    (rule,) = naming
    matches = {(key, attr): value for key, attr, op, value in rule if op == "=="}
    assert matches[("ATTRS", "idVendor")] == "0403"
    assert matches[("ATTRS", "idProduct")] == "6015"
    assert matches[("ATTRS", "product")] == "VE Direct cable"
    symlink = next(value for key, _, op, value in rule if key == "SYMLINK")
    assert next(op for key, _, op, _ in rule if key == "SYMLINK") == "+=", "keep the other names (by-id…)"
    # Named after the cable's serial number, which is what makes the name stable.
    assert "$env{ID_SERIAL_SHORT}" in symlink
    assert matches[("ENV", "ID_SERIAL_SHORT")] == "?*", "no name at all rather than a name without a serial"
    # Only USB serial ports (what the unit's DeviceAllow=char-ttyUSB opens), left to group dialout.
    assert {value for rule in rules for key, _, _, value in rule if key == "KERNEL"} == {"ttyUSB[0-9]*"}
    assert ("GROUP", None, "=", "dialout") in rule


def test_reload_sends_sighup() -> None:
    """`systemctl reload` re-reads config.yaml (the daemon handles SIGHUP; tests/daemon/test_lifecycle.py)."""
    assert _value("ExecReload") == "/bin/kill -HUP $MAINPID"
