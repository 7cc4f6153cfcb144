"""The simulator through real pseudo-terminals and real pyserial, decoded by the project's own Decoder."""

import itertools
import os
import re
import select
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import serial

from pvmonit_exporter.demo import ports as simulator
from pvmonit_exporter.demo.devices import BlueSolarMppt, demo_devices, frames_for, model_for
from pvmonit_exporter.demo.ports import SimulatedPort, Simulator
from pvmonit_exporter.vedirect.framing import Block, Decoder, DecoderStats, encode_block

BMV_MAIN = ["PID", "V", "VS", "I", "P", "CE", "SOC", "TTG", "Alarm", "Relay", "AR", "BMV", "FW"]
BMV_HISTORY = [f"H{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 15, 16, 17, 18)]
MPPT = ["PID", "FW", "SER#", "V", "I", "VPV", "PPV", "CS", "MPPT", "ERR", "LOAD", "IL",
        "H19", "H20", "H21", "H22", "H23", "HSDS"]  # fmt: skip
INVERTER = ["PID", "FW", "SER#", "MODE", "CS", "AR", "WARN", "V", "AC_OUT_V", "AC_OUT_I", "AC_OUT_S"]

FAST = 0.01  # seconds between frames in these tests
TIMEOUT = 20.0  # generous: a loaded machine slows the simulator thread, never the assertions

Until = Callable[[list[Block]], bool]


def read_blocks(path: str, until: Until, timeout: float = TIMEOUT) -> tuple[list[Block], DecoderStats]:
    """Read `path` with pyserial until `until(blocks)` holds; fail the test on timeout."""
    decoder = Decoder()
    blocks: list[Block] = []
    deadline = time.monotonic() + timeout
    with serial.Serial(path, 19200, timeout=0.05) as port:
        while not until(blocks):
            assert time.monotonic() < deadline, f"{path}: condition not met; {len(blocks)} blocks read"
            blocks += decoder.feed(port.read(port.in_waiting or 1))
    return blocks, decoder.stats


def read_until_failure(port: serial.Serial) -> None:
    """Bytes still buffered are read first; then the unplugged port must fail."""
    for _ in range(100):
        port.read(4096)


def at_least(count: int) -> Until:
    return lambda blocks: len(blocks) >= count


def read_all(paths: dict[str, str], until: dict[str, Until]) -> dict[str, tuple[list[Block], DecoderStats]]:
    """Read several ports at once, as the exporter does: one PTY left unread would drop frames."""
    with ThreadPoolExecutor(len(paths)) as pool:
        futures = {name: pool.submit(read_blocks, paths[name], until[name]) for name in until}
        return {name: future.result() for name, future in futures.items()}


def ints(blocks: list[Block], label: str) -> list[int]:
    return [int(block[label]) for block in blocks if label in block]


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def simulator_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "pvmonit-simulator" and t.is_alive()]


def test_every_device_sends_checksummed_blocks_with_the_labels_of_the_real_product(tmp_path: Path) -> None:
    with Simulator(period=FAST, link_dir=tmp_path) as sim:
        results = read_all(
            sim.ports, {"bmv": at_least(140), "mppt": at_least(70), "inverter": at_least(70)}
        )

    for name, (_, stats) in results.items():
        assert stats.checksum_errors == 0, name
        assert stats.malformed_blocks == 0, name
        assert stats.hex_invalid == 0, name

    bmv, _ = results["bmv"]
    kinds = ["main" if list(b) == BMV_MAIN else "history" if list(b) == BMV_HISTORY else "other" for b in bmv]
    assert "other" not in kinds
    # Main then history, every second, like the genuine recording.
    assert all(kinds[i + 1] == "history" for i, kind in enumerate(kinds[:-1]) if kind == "main")
    assert all(kinds[i + 1] == "main" for i, kind in enumerate(kinds[:-1]) if kind == "history")
    assert {b["PID"] for b in bmv if "PID" in b} == {"0x204"}
    assert {b["BMV"] for b in bmv if "BMV" in b} == {"702"}
    assert re.fullmatch(r"0\d{3}", bmv[0].get("FW", bmv[1].get("FW", "")))

    mppt, mppt_stats = results["mppt"]
    assert all(list(b) == MPPT for b in mppt)
    assert {b["PID"] for b in mppt} == {"0xA04A"}
    assert {b["SER#"] for b in mppt} == {"HQ1328Y6TF6"}
    assert mppt_stats.hex_valid >= 1  # an asynchronous HEX message every 30 periods, between blocks
    assert results["bmv"][1].hex_valid == 0

    inverter, _ = results["inverter"]
    assert all(list(b) == INVERTER for b in inverter)
    assert {b["PID"] for b in inverter} == {"0xA202"}
    assert all(re.fullmatch(r"HQ\d{4}[0-9A-Z]{5}", b["SER#"]) for b in inverter)


def test_values_are_plausible_and_move_over_a_simulated_day(tmp_path: Path) -> None:
    """A 3-second day sampled 100 times: morning sun, noon, night, the next morning."""

    def next_morning(blocks: list[Block]) -> bool:
        days = ints(blocks, "HSDS")
        return len(set(days)) > 1 and int(blocks[-1]["PPV"]) > 0

    done = threading.Event()

    def mppt_until(blocks: list[Block]) -> bool:
        if next_morning(blocks):
            done.set()
        return done.is_set()

    with Simulator(period=FAST, day_seconds=3.0, link_dir=tmp_path) as sim:
        results = read_all(sim.ports, {"mppt": mppt_until, "bmv": lambda _: done.is_set()})

    mppt, mppt_stats = results["mppt"]
    bmv, bmv_stats = results["bmv"]
    assert mppt_stats.checksum_errors == bmv_stats.checksum_errors == 0

    days = ints(mppt, "HSDS")
    midnight = days.index(days[-1])
    first_day, second_day = mppt[:midnight], mppt[midnight:]
    power = ints(first_day, "PPV")
    peak = power.index(max(power))
    assert power[0] < max(power) <= 600  # the sun rises after 9:00, within the array's 600 Wp
    assert 0 in power[peak:]
    assert power[-1] == 0
    assert max(ints(second_day, "PPV")) > 0  # and rises again

    # Midnight: today's yield becomes yesterday's; the total never goes back.
    assert int(second_day[0]["H22"]) == int(first_day[-1]["H20"]) > 0
    assert int(second_day[0]["H20"]) < int(first_day[-1]["H20"])
    total = ints(mppt, "H19")
    assert total == sorted(total)
    assert total[-1] > total[0]

    states = ints(mppt, "CS")
    assert {0, 3} <= set(states)
    assert len(set(states)) >= 3
    assert all(0 <= int(b["VPV"]) <= 100_000 for b in mppt)  # a 100/30 takes at most 100 V

    soc = ints(bmv, "SOC")
    assert len(set(soc)) > 10
    assert all(0 <= s <= 1000 for s in soc)
    main = [b for b in bmv if "SOC" in b]
    assert all(22_000 <= int(b["V"]) <= 29_000 for b in main)  # a 24 V lead-acid bank
    assert all((int(b["TTG"]) == -1) == (int(b["I"]) >= 0) for b in main)  # -1 while charging
    assert all(int(b["CE"]) <= 0 for b in main)


def test_unplug_and_replug_through_the_stable_symlink(tmp_path: Path) -> None:
    with Simulator(period=FAST, link_dir=tmp_path / "by-id") as sim:
        link = Path(sim.ports["mppt"])
        port = sim.port("mppt")
        assert link.is_symlink()
        assert os.path.realpath(link) == port.path
        with serial.Serial(str(link), 19200, timeout=0.05) as reader:
            decoder = Decoder()
            deadline = time.monotonic() + TIMEOUT
            while not decoder.feed(reader.read(4096)):
                assert time.monotonic() < deadline
            port.unplug()
            assert not os.path.lexists(link)
            assert not port.write(encode_block({"PID": "0xA04A"}))
            with pytest.raises(serial.SerialException):
                read_until_failure(reader)

        port.replug()
        assert os.path.realpath(link) == port.path
        blocks, stats = read_blocks(str(link), at_least(3))
    assert stats.checksum_errors == 0
    assert all(block["PID"] == "0xA04A" for block in blocks)


def test_the_temperature_file_is_rewritten_every_period(tmp_path: Path) -> None:
    with Simulator(period=FAST, day_seconds=2.0, probe_dir=tmp_path) as sim:
        path = sim.probe_path
        first = path.read_text()
        deadline = time.monotonic() + TIMEOUT
        while (later := path.read_text()) == first:
            assert time.monotonic() < deadline
            time.sleep(FAST)
    for text in (first, later):
        assert re.fullmatch(r"-?\d+\.\d\d\n", text)
        assert -20 < float(text) < 50
    assert list(tmp_path.iterdir()) == []  # stop() removes the file; no temporary file is left


def test_exporter_config_points_at_the_simulated_devices_and_probes(tmp_path: Path) -> None:
    with Simulator(link_dir=tmp_path) as sim:
        devices, probes = sim.exporter_config()
        assert [d.name for d in devices] == ["bmv", "mppt", "inverter"]
        assert {d.name: d.port for d in devices} == sim.ports
        assert all(Path(d.port).parent == tmp_path for d in devices)
        probe, clamp = probes
        assert (probe.name, probe.type, probe.quantity) == ("shed_temperature", "file", "temperature")
        assert probe.interval <= 10
        assert probe.path == str(sim.probe_path)
        assert -20 < float(Path(probe.path).read_text()) < 50
        # PvMonit's clamp as its users migrate it: amperes on a serial line, `conso` in watts, 1500 W ceiling.
        assert (clamp.type, clamp.quantity, clamp.port) == ("serial", "current", sim.clamp_path)
        assert (clamp.power_voltage, clamp.power_max, clamp.emoncms_input) == (230.0, 1500.0, "conso")
        assert probe.emoncms_input == "temp"


def test_the_clamp_prints_the_house_consumption_on_its_serial_port() -> None:
    with Simulator(period=FAST) as sim, serial.Serial(sim.clamp_path, 9600, timeout=0.05) as port:
        data = b""
        deadline = time.monotonic() + TIMEOUT
        while data.count(b"\n") < 5:
            assert time.monotonic() < deadline
            data += port.read(port.in_waiting or 1)
    lines = data.split(b"\r\n")[1:-1]  # the first may be the tail of a line written before the port opened
    assert lines
    for line in lines:
        assert re.fullmatch(rb"\d\d\.\d\dA", line), line  # `00.43A`, what the serial probe parses
        assert 0 <= float(line[:-1]) * 230 <= 250  # within the 250 VA inverter the house hangs on


def test_the_consumption_follows_a_day_of_a_house() -> None:
    """Sampled every simulated minute for a day: a fridge cycling all day, breakfast, the evening's lights."""
    model = model_for(demo_devices(), start_hour=0.0, day_seconds=1440.0)
    by_hour: dict[int, list[float]] = {}
    for _ in range(1440):
        by_hour.setdefault(int(model.hour), []).append(model.house_current * 230)
        model.step(1.0)
    mean = {hour: sum(watts) / len(watts) for hour, watts in by_hour.items()}
    night, breakfast, afternoon, evening = mean[3], mean[7], mean[14], sum(mean[h] for h in range(18, 23)) / 5
    assert 20 < night < afternoon + 30 < evening
    assert breakfast > night + 20
    assert evening > 2 * night
    everything = [w for watts in by_hour.values() for w in watts]
    assert max(everything) - min(everything) > 100  # the fridge and the lights come and go
    assert all(0 <= w <= 240 for w in everything)


def test_stop_leaves_no_thread_no_file_descriptor_and_no_file(tmp_path: Path) -> None:
    before = open_fds()
    sim = Simulator(period=FAST, link_dir=tmp_path)
    sim.start()
    assert simulator_threads()
    assert open_fds() >= before + 2 * (len(sim.devices) + 1)  # a master and a slave per device and the clamp
    temperature_dir = sim.probe_path.parent
    read_blocks(sim.ports["inverter"], at_least(2))
    sim.stop()
    assert simulator_threads() == []
    assert open_fds() == before
    assert list(tmp_path.iterdir()) == []  # symlinks removed
    assert not temperature_dir.exists()  # the simulator's own temporary directory


def test_a_port_nobody_reads_drops_whole_frames_and_never_blocks() -> None:
    frame = encode_block({"PID": "0xA04A", "V": "26120", "PPV": "312"}) * 8
    port = SimulatedPort()
    try:
        started = time.monotonic()
        sent = [port.write(frame) for _ in range(300)]
        assert time.monotonic() - started < 2.0
        assert any(sent)
        assert not all(sent)
        assert port.frames_dropped == sent.count(False)

        blocks_wanted = 3 * 8
        with serial.Serial(port.path, 19200, timeout=0.05) as reader:  # opening flushes what was queued
            for _ in range(3):
                assert port.write(frame)
            decoder = Decoder()
            blocks: list[Block] = []
            while len(blocks) < blocks_wanted:
                blocks += decoder.feed(reader.read(4096))
        assert decoder.stats.checksum_errors == 0
        assert blocks[0] == {"PID": "0xA04A", "V": "26120", "PPV": "312"}
    finally:
        port.unplug()


def test_frames_for_gives_decodable_deterministic_streams_without_a_pty() -> None:
    devices = demo_devices(mppt_count=2)
    assert [d.name for d in devices] == ["bmv", "mppt", "mppt2", "inverter"]
    streams = frames_for(120, devices)
    counts = {}
    for name, data in streams.items():
        decoder = Decoder()
        counts[name] = len(decoder.feed(data))
        assert decoder.stats.checksum_errors == decoder.stats.malformed_blocks == 0
        assert decoder.stats.hex_valid == (4 if name.startswith("mppt") else 0)
    assert counts == {"bmv": 240, "mppt": 120, "mppt2": 120, "inverter": 120}
    assert frames_for(30, demo_devices()) == frames_for(30, demo_devices())
    assert frames_for(30, demo_devices(), seed=1) != frames_for(30, demo_devices())


def test_the_charger_goes_through_its_states_in_order_day_after_day() -> None:
    mppt = BlueSolarMppt("mppt", serial="HQ1328Y6TF6", pv_peak_watts=600.0)
    data = frames_for(4 * 600, [mppt])["mppt"]  # four 10-minute days
    states = [int(b["CS"]) for b in Decoder().feed(data)]
    changes = [(a, b) for a, b in itertools.pairwise(states) if a != b]
    assert {0, 3, 4, 5} <= set(states)
    allowed = {(0, 3), (3, 4), (4, 5), (3, 0), (4, 0), (5, 0), (5, 3)}
    assert set(changes) <= allowed
    assert changes.count((0, 3)) >= 3  # every morning


def test_the_writer_outlives_a_failed_write_and_says_so_once(tmp_path: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    """The temperature file's directory vanishing (a tmp cleaner) used to end the writer thread silently:
    every device then went quiet. Frames keep flowing; one line says why the file is not written."""
    import logging
    import shutil

    caplog.set_level(logging.INFO, logger="pvmonit_exporter.demo.ports")
    probe_dir = tmp_path / "probe"
    probe_dir.mkdir()
    with Simulator(period=FAST, day_seconds=2.0, probe_dir=probe_dir) as sim:
        shutil.rmtree(probe_dir)
        time.sleep(20 * FAST)  # many periods, each failing
        blocks, _ = read_blocks(sim.ports["bmv"], at_least(3))
        assert len(blocks) >= 3
        probe_dir.mkdir()
        deadline = time.monotonic() + TIMEOUT
        while not sim.probe_path.exists():
            assert time.monotonic() < deadline
            time.sleep(FAST)
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    errors = [m for level, m in messages if level == "ERROR"]
    assert len(errors) == 1
    assert "cannot write" in errors[0]
    assert ("INFO", "simulator: writing again") in messages


@pytest.mark.parametrize("when", ["after select took the descriptor", "before select took the descriptor"])
def test_a_port_unplugged_while_the_thread_lists_the_ports_does_not_end_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, when: str) -> None:
    """The thread lists the plugged ports, then select()s on them; an unplug between the two (another thread,
    as the replug test does) once ended the thread with EBADF or ValueError, and no frame came again."""
    with Simulator(period=FAST, link_dir=tmp_path / "by-id") as sim:
        link, port = sim.ports["mppt"], sim.port("mppt")
        unplugged = threading.Event()

        def unplug_in_between(ports: list[SimulatedPort], *rest: Any) -> Any:
            if unplugged.is_set():
                return select.select(ports, *rest)
            descriptors = [p.fileno() for p in ports] if when.startswith("after") else ports
            port.unplug()
            try:
                return select.select(descriptors, *rest)
            finally:
                unplugged.set()  # only now: a replug could reuse the closed descriptor's number

        monkeypatch.setattr(simulator, "select", SimpleNamespace(select=unplug_in_between))
        assert unplugged.wait(TIMEOUT)
        port.replug()
        blocks, stats = read_blocks(link, at_least(3))
    assert stats.checksum_errors == 0
    assert all(block["PID"] == "0xA04A" for block in blocks)
