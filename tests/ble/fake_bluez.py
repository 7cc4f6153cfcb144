"""A stand-in for bluetoothd on a real (private) D-Bus daemon, answering bleak exactly as BlueZ does for what the
exporter uses: the object manager's adapters, discovery (SetDiscoveryFilter, StartDiscovery, StopDiscovery), a
BlueZ without the advertisement monitor (RegisterMonitor unknown, as bluetoothd without --experimental), and
adverts as BlueZ reports them: a Device1 object with its ManufacturerData and RSSI.

Fakes only what cannot run here (a radio and the kernel's HCI); bleak, dbus-fast and the D-Bus daemon are real.
"""

import asyncio
import threading

from dbus_fast import Message, MessageType, Variant
from dbus_fast.aio import MessageBus

ADAPTER = "/org/bluez/hci0"
_UNKNOWN_METHOD = "org.freedesktop.DBus.Error.UnknownMethod"


class FakeBlueZ:
    """`adapter`: None for a machine without one; `powered` False for an adapter switched off."""

    def __init__(self, bus_address: str, *, adapter: bool = True, powered: bool = True) -> None:
        self.bus_address = bus_address
        self.objects: dict[str, dict[str, dict[str, Variant]]] = {}
        if adapter:
            self.objects[ADAPTER] = {"org.bluez.Adapter1": {
                "Address": Variant("s", "B8:27:EB:00:00:01"), "Powered": Variant("b", powered),
                "Discovering": Variant("b", False), "Roles": Variant("as", ["central", "peripheral"]),
            }}
        self.discovering = threading.Event()
        self._known: set[str] = set()
        self.calls: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._bus: MessageBus | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._connect(), self._loop).result(timeout=10)

    def stop(self) -> None:
        if self._bus is not None:
            self._loop.call_soon_threadsafe(self._bus.disconnect)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    async def _connect(self) -> None:
        self._bus = await MessageBus(bus_address=self.bus_address).connect()
        self._bus.add_message_handler(self._answer)
        await self._bus.request_name("org.bluez")

    def _answer(self, message: Message) -> Message | None:
        if message.message_type != MessageType.METHOD_CALL:
            return None
        self.calls.append(message.member or "")
        if message.member == "GetManagedObjects":
            return Message.new_method_return(message, "a{oa{sa{sv}}}", [self.objects])
        if message.path == ADAPTER and message.member in ("SetDiscoveryFilter", "StartDiscovery", "StopDiscovery"):
            if message.member == "StartDiscovery":
                self.discovering.set()
            elif message.member == "StopDiscovery":
                self.discovering.clear()
            return Message.new_method_return(message)
        return Message.new_error(message, _UNKNOWN_METHOD, f"{message.interface}.{message.member} not provided")

    def advertise(self, address: str, manufacturer_data: dict[int, bytes], rssi: int) -> None:
        """What BlueZ signals when discovery hears a device: a Device1 with the advert's data."""
        path = f"{ADAPTER}/dev_{address.replace(':', '_')}"
        heard = {"RSSI": Variant("n", rssi),
                 "ManufacturerData": Variant("a{qv}", {k: Variant("ay", v) for k, v in manufacturer_data.items()})}
        if path in self._known:  # BlueZ signals what changed
            signal = Message.new_signal(path, "org.freedesktop.DBus.Properties", "PropertiesChanged", "sa{sv}as",
                                        ["org.bluez.Device1", heard, []])
        else:
            signal = Message.new_signal("/", "org.freedesktop.DBus.ObjectManager", "InterfacesAdded", "oa{sa{sv}}",
                                        [path, {"org.bluez.Device1": {**self._device(address), **heard}}])
            self._known.add(path)
        bus = self._bus
        assert bus is not None
        self._loop.call_soon_threadsafe(bus.send, signal)

    @staticmethod
    def _device(address: str) -> dict[str, Variant]:
        return {
            "Address": Variant("s", address), "AddressType": Variant("s", "public"),
            "Adapter": Variant("o", ADAPTER), "Alias": Variant("s", address.replace(":", "-")),
            "Paired": Variant("b", False), "Connected": Variant("b", False), "Trusted": Variant("b", False),
            "Blocked": Variant("b", False), "LegacyPairing": Variant("b", False), "UUIDs": Variant("as", []),
            "ServicesResolved": Variant("b", False),
        }
