"""`pvmonit-exporter simulate`: the demo's simulated devices without the daemon, so that `read`, `hex` and
`ble decode` can be tried on a machine without hardware.

It starts the same Simulator as `demo` (pseudo-terminals carrying genuine VE.Direct text and HEX answers),
prints the devices' ports, one advert of the demo's simulated SmartShunt and its key, and the commands to try,
then runs until SIGTERM (exit 0) or Ctrl-C (exit 130, as `read`).
"""

import signal
import sys
import threading
from types import FrameType
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:  # imported when the command runs: the other commands do not load the simulator
    from pvmonit_exporter.demo.ports import Simulator

# The main thread wakes this often: a signal is only handled when it does.
_WAKE_SECONDS = 0.5


def banner(simulator: "Simulator", advert: tuple[str, str, str] | None) -> str:
    """What `simulate` prints: the ports, the advert (`(description, advert hex, key hex)`, None without the
    [ble] extra) and the commands to try."""
    ports = simulator.ports
    width = max(len(name) for name in ports)
    lines = ["Simulated VE.Direct devices (text and HEX, 19200 baud):"]
    lines += [f"  {name:<{width}}  {path}" for name, path in ports.items()]
    from pvmonit_exporter.demo.devices import BlueSolarMppt

    # A solar charger answers the most HEX questions (its history too).
    chargers = [ports[device.name] for device in simulator.devices if isinstance(device, BlueSolarMppt)]
    charger = chargers[0] if chargers else next(iter(ports.values()))
    tries = [f"pvmonit-exporter read {charger} --decoded", f"pvmonit-exporter hex {charger} get product_id --json"]
    if advert is None:
        lines.append("No simulated Bluetooth device: the [ble] extra is not installed.")
    else:
        description, data, key = advert
        lines += [f"Simulated Bluetooth device: {description}", f"  advert  {data}", f"  key     {key}"]
        tries.append(f"pvmonit-exporter ble decode --key {key} {data}")
    lines.append("Try, in another terminal:")
    lines += [f"  {command}" for command in tries]
    lines.append("Press Ctrl-C to stop.")
    return "\n".join(lines) + "\n"


def _advert(simulator: "Simulator") -> tuple[str, str, str] | None:
    """One advert of the demo's SmartShunt on the simulated battery, as it is now."""
    try:
        from pvmonit_exporter.demo.ble import DEMO_SHUNT
    except ImportError:  # the [ble] extra encrypts the adverts
        return None
    data = DEMO_SHUNT.advert(simulator.model, nonce=1)
    return (f"{DEMO_SHUNT.name}, a SmartShunt at {DEMO_SHUNT.address}", data.hex(), DEMO_SHUNT.key.hex())


def simulate_command(out: IO[str] = sys.stdout) -> int:
    from pvmonit_exporter.demo.ports import Simulator

    stopping = threading.Event()

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        with Simulator() as simulator:  # Ctrl-C (KeyboardInterrupt) leaves through here too: the ports close
            out.write(banner(simulator, _advert(simulator)))
            out.flush()
            while not stopping.wait(_WAKE_SECONDS):
                pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0
