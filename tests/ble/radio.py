"""A radio for tests, behind the same interface as bleak's (`AdvertScanner`): the test decides what is heard
and when the radio fails."""

import queue
import threading
import time
from collections.abc import Callable

from pvmonit_exporter.sources.ble import Advert, AdvertSink


class ScriptedRadio:
    description = "scripted radio"

    def __init__(self) -> None:
        self._heard: queue.Queue[Advert] = queue.Queue()
        self.failures: queue.Queue[BaseException] = queue.Queue()  # raised by the next scans, one each
        self.scans = 0

    def send(self, address: str, data: bytes, rssi: int | None = -70) -> None:
        self._heard.put(Advert(address, data, rssi, time.time()))

    def scan(self, sink: AdvertSink, stop: threading.Event, listening: Callable[[], None]) -> None:
        self.scans += 1
        if not self.failures.empty():
            raise self.failures.get()
        listening()
        while not stop.is_set():
            try:
                sink(self._heard.get(timeout=0.02))
            except queue.Empty:
                continue
