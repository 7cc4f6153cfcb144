"""The daemon's log as an operator reads it (`journalctl -u pvmonit-exporter`): a device that stops sending and
comes back, each said once. `pvmonit-exporter run` in a subprocess, the device on a real pseudo-terminal."""

import logging
import time
from pathlib import Path

import pytest

from pvmonit_exporter.config import DeviceConfig
from pvmonit_exporter.sources.serialport import Discovery, PortClaims, SerialReader
from pvmonit_exporter.state import State
from pvmonit_exporter.vedirect.framing import encode_block
from pvmonit_exporter.vedirect.hex import Response, encode_register
from tests.daemon.test_exporter import Daemon, write_config
from tests.helpers import FakeDevicePort, wait_for
from tests.vedirect_samples import MPPT


@pytest.mark.slow
def test_silence_and_return_are_logged_once_each(tmp_path: Path) -> None:
    port = FakeDevicePort(tmp_path / "cable-mppt")
    daemon = Daemon(write_config(tmp_path, f"devices:\n  - name: mppt\n    port: {port.path}\n"
                                           "    stale_timeout: 2\n"), tmp_path)
    try:
        log = daemon.stderr_path.read_text
        wait_for(lambda: "device mppt: reading" in log())
        for _ in range(10):  # a device sending every 0.2 s: nothing to say
            port.write(encode_block(MPPT))
            time.sleep(0.2)
        assert "no valid block" not in log()
        wait_for(lambda: "no valid block" in log(), timeout=10)
        time.sleep(3)  # well past the timeout again: still said once
        for _ in range(10):
            port.write(encode_block(MPPT))
            time.sleep(0.2)
        wait_for(lambda: "receiving again" in log())
        time.sleep(1)
    finally:
        assert daemon.stop() == 0
        port.close()
    lines = log().splitlines()
    silent = [line for line in lines if "no valid block" in line]
    assert silent == [f"WARNING pvmonit_exporter.sources.serialport: device mppt: {port.path}: no valid block for "
                      "2 s: nothing arrived (check the cable and the port; is the device asleep?)"]
    back = [line for line in lines if "receiving again" in line]
    assert back == [f"INFO pvmonit_exporter.sources.serialport: device mppt: {port.path}: receiving again"]
    assert not [line for line in lines if "wrong device" in line]


def test_hex_answers_while_the_text_pauses_are_no_silence(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A device answering HEX requests pauses its text: its valid HEX messages keep the reader from calling the
    port silent or at the wrong speed."""
    caplog.set_level(logging.INFO, logger="pvmonit_exporter.sources.serialport")
    port = FakeDevicePort(tmp_path / "cable-mppt")
    device = DeviceConfig("mppt", port.path, stale_timeout=1.0, history=False)
    state = State([device])
    reader = SerialReader(device, state, Discovery(PortClaims(), ()))
    reader.start()
    try:
        wait_for(lambda: state.devices()[0].connected)
        port.write(encode_block(MPPT))
        wait_for(lambda: state.devices()[0].stats.blocks_valid == 1)
        answer = encode_register(Response.ASYNC, 0xEDD5, 0, (2618).to_bytes(2, "little"))  # battery voltage
        for _ in range(15):  # 3 s of HEX only, three times the stale timeout
            port.write(answer)
            time.sleep(0.2)
        assert state.devices()[0].stats.hex_valid >= 10
        assert not [r for r in caplog.records if "no valid block" in r.getMessage()]
        wait_for(lambda: [r for r in caplog.records if "nothing arrived" in r.getMessage()])  # then real silence
    finally:
        reader.stop()
        port.close()
