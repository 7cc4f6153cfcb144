"""HexSession: one request in flight, timeout and bounded retry, replies matched by command and register id."""

from pvmonit_exporter.vedirect import hex as vehex
from pvmonit_exporter.vedirect.framing import encode_hex_message
from pvmonit_exporter.vedirect.hex_session import PING, HexSession, Outcome, Result, get


def message(raw: bytes) -> vehex.Reply:
    reply = vehex.parse_message(raw[1:-1])
    assert reply is not None
    return reply


def get_reply(register: int, flags: int = 0, data: bytes = b"\x96\x00") -> vehex.Reply:
    return message(vehex.encode_register(vehex.Response.GET, register, flags, data))


ASYNC = message(b":A0102000345\n")


def test_one_request_in_flight_at_a_time() -> None:
    session = HexSession(timeout=1.0)
    session.submit(get(0xEDF0), get(0xEDF7))
    assert session.due(0.0) == (b":7F0ED0071\n", [])
    assert session.due(0.1) == (None, [])  # the first is still in flight
    outcome = session.receive(get_reply(0xEDF0))
    assert outcome is not None
    assert (outcome.request, outcome.result, outcome.attempts) == (get(0xEDF0), Result.OK, 1)
    sent, _ = session.due(0.2)
    assert sent == vehex.get(0xEDF7)


def test_timeout_then_retry_then_give_up() -> None:
    session = HexSession(timeout=0.5, attempts=3)
    session.submit(PING)
    assert session.due(0.0)[0] == b":154\n"
    assert session.due(0.4) == (None, [])
    assert session.due(0.5)[0] == b":154\n"  # second try
    assert session.due(1.0)[0] == b":154\n"  # third try
    assert session.due(1.5) == (None, [Outcome(PING, Result.TIMEOUT, None, 3)])
    assert session.idle


def test_late_answer_to_a_retried_request_counts_once() -> None:
    session = HexSession(timeout=0.5)
    session.submit(get(0xEDF0))
    session.due(0.0)
    session.due(0.6)  # retried
    outcome = session.receive(get_reply(0xEDF0))
    assert outcome is not None
    assert outcome.attempts == 2
    assert session.receive(get_reply(0xEDF0)) is None  # the answer to the retry: stale now
    assert session.stale_replies == 1


def test_reply_for_another_register_is_stale_and_ignored() -> None:
    session = HexSession()
    session.submit(get(0xEDF7))
    session.due(0.0)
    assert session.receive(get_reply(0xEDF0)) is None
    assert session.receive(message(b":51641F9\n")) is None  # a ping reply while a get is in flight
    assert session.stale_replies == 2
    assert not session.idle


def test_async_messages_are_not_results_nor_stale() -> None:
    session = HexSession()
    session.submit(get(0x0201))
    session.due(0.0)
    assert session.receive(ASYNC) is None  # same register, but async: not the answer
    assert session.stale_replies == 0


def test_receive_messages_splits_outcomes_from_async_and_skips_what_does_not_parse() -> None:
    session = HexSession()
    session.submit(get(0xEDF0))
    session.due(0.0)
    answer = vehex.encode_register(vehex.Response.GET, 0xEDF0, 0, b"\x96\x00")
    bodies = [b"A0102000345", b"not hex", answer[1:-1], answer[1:-1]]
    outcomes, async_replies = session.receive_messages(bodies)
    assert [(o.request, o.result) for o in outcomes] == [(get(0xEDF0), Result.OK)]
    assert async_replies == [ASYNC]
    assert session.stale_replies == 1  # the repeated answer


def test_flags_are_distinct_results_with_their_words() -> None:
    session = HexSession()
    results = []
    for flags in (0x01, 0x02, 0x04, 0x08):
        session.submit(get(0x1234))
        session.due(0.0)
        outcome = session.receive(get_reply(0x1234, flags, b""))
        assert outcome is not None
        results.append((outcome.result, outcome.error))
    assert results == [
        (Result.UNKNOWN_ID, "unknown id"), (Result.NOT_SUPPORTED, "not supported"),
        (Result.PARAMETER_ERROR, "parameter error"), (Result.REFUSED, "flags 0x08"),
    ]


def test_unknown_command_answers_what_is_in_flight() -> None:
    session = HexSession()
    session.submit(PING)
    session.due(0.0)
    outcome = session.receive(message(encode_hex_message(0x3, b"\x01")))
    assert outcome is not None
    assert (outcome.result, outcome.error) == (Result.REFUSED, "unknown command")


def test_clear_forgets_the_request_in_flight() -> None:
    session = HexSession()
    session.submit(PING, PING)
    session.due(0.0)
    session.clear()
    assert session.idle
    assert session.receive(message(b":51641F9\n")) is None
