"""Recorded HEX exchanges from go-victron's test suites, through our decoder and through the real `hex` command.

The vectors (`tests/data/vedirect_hex/go_victron_vectors.json`, origin and licence in that directory's README)
hold what five real devices answered — async messages and text blocks that came before the reply included —
with go-victron's expected value. Each is decoded the way `hex PORT get --json` decodes it, and compared with
`expected`; `expected` itself is checked against go-victron's value, so the file cannot drift from its source.
Where the two differ, the difference must be one ve_regs.h explains (the product id's layout, a value the
header calls "not available"). Then the same recordings are replayed by a device on a real pseudo-terminal and
read by the `hex` command in a subprocess.
"""

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from pvmonit_exporter.commands.hex import register_json
from pvmonit_exporter.demo.day import SystemModel
from pvmonit_exporter.demo.devices import BlueSolarMppt, SimulatedDevice
from pvmonit_exporter.demo.ports import Simulator
from pvmonit_exporter.vedirect import hex as vehex
from pvmonit_exporter.vedirect.framing import Block, Decoder
from pvmonit_exporter.vedirect.hex_session import HexSession, get
from pvmonit_exporter.vedirect.history import HISTORY_DAYS, encode_total
from pvmonit_exporter.vedirect.registers import REGISTERS, lookup, not_available_raw, raw_number
from tests.config import run_cli

DATA = json.loads((Path(__file__).parents[1] / "data" / "vedirect_hex" / "go_victron_vectors.json")
                  .read_text(encoding="utf-8"))
VECTORS: list[dict[str, Any]] = DATA["vectors"]
# The frames the issue quotes, each among the recordings.
QUOTED = {":70001000056A0FF58\n": "0xA056", ":70001000089A3FE23\n": "0xA389", ":77DED00FF7F66\n": None}


def _bytes(text: str) -> bytes:
    return text.encode("latin-1")


def _case(vector: dict[str, Any]) -> str:
    origin: str = vector["origin"]
    return origin.split(" ", 2)[2]


def _id(vector: dict[str, Any]) -> str:
    return f"{_case(vector)} {vector['register']}"


def decode_recorded(request: str, response: str) -> dict[str, Any]:
    """What `hex PORT get REG --json` prints for `response`: the reply is the message that answers `request`
    (async messages and text before it are skipped, as the command skips them)."""
    register = int(request[4:6] + request[2:4], 16)
    session = HexSession()
    session.submit(get(register))
    assert session.due(0.0)[0] == _bytes(request)  # we ask exactly what go-victron asked
    decoder = Decoder(keep_hex=True)
    decoder.feed(_bytes(response))
    outcomes, _ = session.receive_messages(decoder.take_hex_messages())
    (outcome,) = outcomes
    spec = lookup(f"0x{register:04X}")
    assert spec is not None
    return register_json(spec, outcome)


def test_the_quoted_frames_are_among_the_vectors() -> None:
    for frame, value in QUOTED.items():
        matching = [vector for vector in VECTORS if vector["response"] == frame]
        assert matching, frame
        assert all(vector["expected"] == value for vector in matching)


@pytest.mark.parametrize("vector", VECTORS, ids=_id)
def test_recorded_reply_decodes_to_the_expected_value(vector: dict[str, Any]) -> None:
    document = decode_recorded(vector["request"], vector["response"])
    assert document.get("error") == vector.get("expected_error")
    assert document["value"] == pytest.approx(vector["expected"])


def _go_number(text: str) -> float:
    match = re.search(r"=\s*(-?(?:0x[0-9A-Fa-f]+|\d+(?:\.\d+)?))", text)
    assert match, text
    return float(int(match.group(1), 16)) if match.group(1).startswith("0x") else float(match.group(1))


def _reply_data(vector: dict[str, Any]) -> bytes:
    decoder = Decoder(keep_hex=True)
    decoder.feed(_bytes(vector["response"]))
    replies = [vehex.parse_message(body) for body in decoder.take_hex_messages()]
    register = int(vector["register"], 16)
    (reply,) = [r for r in replies if isinstance(r, vehex.RegisterReply) and r.command is vehex.Response.GET
                and r.register == register]
    return reply.data


@pytest.mark.parametrize("vector", [v for v in VECTORS if "expected_error" not in v], ids=_id)
def test_expected_is_go_victrons_value_or_the_header_says_why_not(vector: dict[str, Any]) -> None:
    """`expected` is go-victron's value in our unit; where not, ve_regs.h accounts for the whole difference."""
    register = REGISTERS[int(vector["register"], 16)]
    go, expected = vector["go_victron"], vector["expected"]
    if isinstance(expected, str) and "why_different" not in vector:  # a serial number, a model name
        assert go.endswith((f"={expected}", f'"{expected}"'))
    elif "why_different" not in vector:
        if "(0x" in go:  # TestVedirect checks the raw number
            assert raw_number(register, _reply_data(vector)) == _go_number(go)
        elif not re.search(r"=-?\d", go):  # a text (OffReason): the map's comment has the number
            assert raw_number(register, _reply_data(vector)) == _go_number(vector["go_victron_comment"])
        elif register.unit == "K":  # go-victron converts the kelvin to °C
            assert _go_number(go) == pytest.approx(expected - 273.15)
        else:
            assert _go_number(go) == pytest.approx(expected)
    elif expected is None:  # go-victron shows Victron's "not available" value as a number
        data = _reply_data(vector)
        raw = int.from_bytes(data, "little")
        assert raw == not_available_raw(register, len(data)) == _go_number(vector["go_victron_comment"])
        shown = _go_number(go) + (273.15 if register.unit == "K" else 0.0)
        assert shown == pytest.approx(raw * register.scale)
    else:  # 0x0100: go-victron's un32, whose bytes 1-2 are the id that the product id command answers
        assert vector["register"] == "0x0100"
        assert f"0x{int(_go_number(go)) >> 8 & 0xFFFF:04X}" == expected
        exchange = vector["device_id_exchange"]
        assert _bytes(exchange["request"]) == vehex.product_id()
        done = vehex.parse_message(_bytes(exchange["response"])[1:-1])
        assert isinstance(done, vehex.DoneReply)
        assert f"0x{done.number:04X}" == expected


# ---------------------------------------------------------------------------------------------------------
# The same recordings, replayed on a real pseudo-terminal to the real `hex` command


class RecordedDevice(SimulatedDevice):
    """A device that answers exactly what a real one answered: go-victron's recorded lookup maps
    (`internal/vetest/lookupIoPort.go` serves each request's recorded bytes the same way). Silent on a request
    it has no recording for, and sends no text blocks of its own (the recorded ones come with the replies)."""

    def __init__(self, name: str, answers: Mapping[str, str]) -> None:
        super().__init__(name)
        self.answers = {request.upper(): _bytes(response) for request, response in answers.items()}
        self.asked: list[str] = []

    def blocks(self, model: SystemModel) -> list[Block]:
        return []

    def answer(self, body: bytes, model: SystemModel) -> bytes | None:
        request = ":" + body.decode("ascii", "replace").upper() + "\n"
        self.asked.append(request)
        return self.answers.get(request)


def _recordings() -> dict[str, list[dict[str, Any]]]:
    cases: dict[str, list[dict[str, Any]]] = {}
    for vector in VECTORS:
        cases.setdefault(_case(vector), []).append(vector)
    return cases


CASES = _recordings()
NAMES = {case: f"device{index}" for index, case in enumerate(CASES)}


@pytest.fixture(scope="module")
def recorded() -> Iterator[Simulator]:
    devices = [RecordedDevice(NAMES[case], {v["request"]: v["response"] for v in vectors})
               for case, vectors in CASES.items()]
    with Simulator(devices, period=0.2) as simulator:
        yield simulator


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_hex_get_json_over_a_pty_gives_the_expected_values(recorded: Simulator, case: str) -> None:
    vectors = CASES[case]
    result = run_cli("hex", recorded.ports[NAMES[case]], "get", *(v["register"] for v in vectors), "--json")
    assert result.returncode == 0, result.stderr
    documents = [json.loads(line) for line in result.stdout.splitlines()]
    assert [document["register"] for document in documents] == [v["register"] for v in vectors]
    for document, vector in zip(documents, vectors, strict=True):
        assert document.get("error") == vector.get("expected_error"), vector["register"]
        assert document["value"] == pytest.approx(vector["expected"]), vector["register"]


@pytest.mark.slow
def test_the_issues_product_id_line(recorded: Simulator) -> None:
    """`hex PORT get product_id --json` on the SmartSolar answering `:70001000056A0FF58`."""
    case = next(case for case, vectors in CASES.items()
                if any(v["response"] == ":70001000056A0FF58\n" for v in vectors))
    result = run_cli("hex", recorded.ports[NAMES[case]], "get", "product_id", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"register": "0x0100", "name": "product_id", "value": "0xA056", "unit": ""}


class ChargerClaimingTooManyDays(BlueSolarMppt):
    """A charger whose totals record says more days than a charger holds (0x1050 … 0x106E), and which
    answers 0x106F as ve_regs.h defines it (history cycle count, un8): it remembers what it was asked."""

    def __init__(self, name: str, days_available: int) -> None:
        super().__init__(name, serial="HQ1328Y6TF6", pv_peak_watts=600.0)
        self.days_available = days_available
        self.asked: list[int] = []

    def registers(self, model: SystemModel) -> Mapping[int, bytes]:
        return {**super().registers(model), 0x104F: encode_total(2415.37, 2415.37, 72.0, 28.9, self.days_available),
                0x106F: b"\x07"}

    def answer(self, body: bytes, model: SystemModel) -> bytes | None:
        frame = vehex.parse_frame(body)
        if frame is not None and frame[0] == vehex.Command.GET:
            self.asked.append(int.from_bytes(frame[1][:2], "little"))
        return super().answer(body, model)


@pytest.mark.slow
@pytest.mark.parametrize("days_available", [31, 200])
def test_history_never_asks_beyond_0x106e(days_available: int) -> None:
    charger = ChargerClaimingTooManyDays("mppt", days_available)
    with Simulator([charger], period=0.2, text_pause=0.5) as simulator:
        result = run_cli("hex", simulator.ports["mppt"], "history", "--json")
    assert result.returncode == 0, result.stderr
    days = [json.loads(line) for line in result.stdout.splitlines()]
    assert [day["days_ago"] for day in days] == list(range(HISTORY_DAYS))
    assert set(charger.asked) == {0x104F, *range(0x1050, 0x106F)}  # a retry on a slow machine asks one twice
