"""One device's current readings, merged from its valid blocks. Pure: the caller passes the time.

A BMV sends a main block and a history block; newer MPPTs split their fields over two blocks too. Each field
keeps the time of the block that last carried it, so a field that stops arriving ages out on its own instead
of being reported forever.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

from pvmonit_exporter.vedirect.fields import format_firmware
from pvmonit_exporter.vedirect.framing import Block
from pvmonit_exporter.vedirect.products import parse_pid, product_name
from pvmonit_exporter.vedirect.registers import REGISTERS, text_field


@dataclass(frozen=True)
class Identity:
    """What a device says about itself; empty strings when it has not said."""

    product_id: str = ""
    product: str = ""
    serial_number: str = ""
    firmware: str = ""
    kind: str = "unknown"


def device_kind(pid: int | None, fields: Mapping[str, str]) -> str:
    """`bmv`, `mppt`, `inverter`, `charger` or `unknown` — from the PID ranges of reference §6, else the
    fields a device sends (BMV-712 and SmartShunt PIDs sit among the chargers' 0xA3xx; newer SmartShunts are 0xC0xx)."""
    if "BMV" in fields or "SOC" in fields or (pid is not None and (pid >> 4 in (0x20, 0xA38) or pid >> 8 == 0xC0)):
        return "bmv"
    if pid is not None:
        if pid == 0x300 or pid >> 8 in (0xA0, 0xA1):
            return "mppt"
        if pid >> 8 in (0xA2, 0xA4):
            return "inverter"
        if pid >> 8 == 0xA3:
            return "charger"
    if "PPV" in fields:
        return "mppt"
    if "AC_OUT_V" in fields:
        return "inverter"
    return "unknown"


def names_serial_number(block: Block, serial_number: str) -> bool | None:
    """Whether `block` comes from the device with `serial_number`: True; False when it names another device
    (another SER#, or a PID or model without SER#); None when it names no device at all."""
    if "SER#" in block:
        return block["SER#"] == serial_number
    if "PID" in block or "BMV" in block:
        return False
    return None


@dataclass
class DeviceReadings:
    """Latest raw value and its time for every label a device has sent in a valid block."""

    values: dict[str, str] = field(default_factory=dict)
    times: dict[str, float] = field(default_factory=dict)
    last_block_time: float | None = None
    registers: dict[int, bytes] = field(default_factory=dict)  # HEX register id → latest value bytes
    register_times: dict[int, float] = field(default_factory=dict)

    def update(self, block: Block, now: float) -> None:
        """Merge `block`, received at `now` (any clock that only moves forward)."""
        if any(block.get(label, value) != value for label, value in self._identity_items()):
            self.clear()  # another device on this port (ttyUSB numbers swapped): forget everything of the old one
        for label, raw in block.items():
            self.values[label] = raw
            self.times[label] = now
        self.last_block_time = now

    def update_register(self, register_id: int, data: bytes, now: float) -> None:
        """A register's value from a HEX reply or async message. A register that mirrors a text field (0x0201
        device state → CS) updates that reading too, when this kind of device has the register."""
        self.registers[register_id] = data
        self.register_times[register_id] = now
        register = REGISTERS.get(register_id)
        if register is None or self.identity().kind not in register.kinds:
            return
        mirrored = text_field(register, data)
        if mirrored is not None:
            label, raw = mirrored
            self.values[label] = raw
            self.times[label] = now

    def current_registers(self, now: float, max_age: float) -> dict[int, bytes]:
        """The register values received within `max_age` seconds of `now`."""
        return {rid: data for rid, data in self.registers.items() if now - self.register_times[rid] <= max_age}

    def _identity_items(self) -> list[tuple[str, str]]:
        return [(label, self.values[label]) for label in ("PID", "SER#") if label in self.values]

    def clear(self) -> None:
        self.values.clear()
        self.times.clear()
        self.registers.clear()
        self.register_times.clear()
        self.last_block_time = None

    def current(self, now: float, max_age: float) -> dict[str, str]:
        """The fields received within `max_age` seconds of `now`, in the order first received."""
        return {label: raw for label, raw in self.values.items() if now - self.times[label] <= max_age}

    def identity(self) -> Identity:
        """Identity from the latest values (text fields are kept even when other values went stale)."""
        raw_pid = self.values.get("PID", "")
        pid = parse_pid(raw_pid) if raw_pid else None
        firmware_raw = self.values.get("FW") or self.values.get("FWE") or ""
        return Identity(
            product_id=f"0x{pid:04X}" if pid is not None else raw_pid,
            product=self._product(raw_pid),
            serial_number=self.values.get("SER#", ""),
            firmware=format_firmware(firmware_raw) if firmware_raw else "",
            kind=device_kind(pid, self.values),
        )

    def _product(self, raw_pid: str) -> str:
        if raw_pid:
            return product_name(raw_pid) or f"Unknown product {raw_pid}"
        model = self.values.get("BMV", "")  # BMV-60x send no PID, only their model
        return f"BMV-{model}" if model else ""
