"""The bulk client: what it sends, and how each emoncms answer is classified."""

import math
import threading
import time
from urllib.parse import parse_qs

import pytest

from pvmonit_exporter.forwarder.emoncms import MAX_ANSWER_BYTES, EmoncmsClient, classify, encode_rows, scrub
from pvmonit_exporter.forwarder.outcome import AuthError, ContentError, Ok, Outcome, TransientError
from pvmonit_exporter.forwarder.snapshot import Row
from tests.forwarder.conftest import START
from tests.forwarder.fake_emoncms import READ_KEY, WRITE_KEY, FakeEmoncms, Point
from tests.forwarder.hostile_http import HugeAnswer, ScriptedServer, answer, drip, redirect

ROWS = [Row(1_780_315_500, "mppt", {"V": 26180, "PPV": 92}), Row(1_780_315_500, "serre-été", {"temp": 21.5})]


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, "ok", Ok()),
        (201, "ok", Ok()),
        (200, "ok\n", TransientError("http", "unexpected answer (HTTP 200): ok")),
        (401, "Invalid API key", AuthError("HTTP 401 Invalid API key: the API key is not valid")),
        (200, "", AuthError("empty answer: the API key is missing or is the read-only key (use the write key)")),
        (200, '{"success": false, "message": "Format error, json value is not numeric"}',
         ContentError("Format error, json value is not numeric")),
        (500, "<html>oops</html>", TransientError("http", "HTTP 500: <html>oops</html>")),
        (404, "Not found", TransientError("http", "HTTP 404: Not found")),
        (200, "<html>captive portal</html>", TransientError("http", "unexpected answer (HTTP 200): "
                                                                    "<html>captive portal</html>")),
    ],
)
def test_classify(status: int, body: str, expected: Outcome) -> None:
    assert classify(status, body) == expected


@pytest.mark.parametrize(
    ("status", "location", "target"),
    [(302, "http://elsewhere.example/emoncms/input/bulk.json", "http://elsewhere.example/emoncms/input/bulk.json"),
     (301, None, "nowhere (no Location header)")],
)
def test_a_redirect_is_a_failure_naming_its_target(status: int, location: str | None, target: str) -> None:
    outcome = classify(status, "ok", location)

    assert isinstance(outcome, TransientError)
    assert outcome.kind == "http"
    assert outcome.message.startswith(f"HTTP {status} redirect to {target}: not followed")


@pytest.mark.parametrize("status", ["301 Moved Permanently", "302 Found", "307 Temporary Redirect",
                                    "308 Permanent Redirect"])
def test_a_redirect_to_a_server_that_answers_ok_is_not_followed(status: str) -> None:
    """emoncms moved (http → https, a new host): the host redirected to answers `ok` to anything, but it is not
    emoncms — following the redirect would remove rows emoncms never got."""
    with ScriptedServer(answer("200 OK", b"ok")) as elsewhere, \
            ScriptedServer(redirect(status, f"{elsewhere.url}/input/bulk.json")) as emoncms:
        outcome = EmoncmsClient(emoncms.url, WRITE_KEY, timeout=5).send(ROWS, sentat=1)

        assert isinstance(outcome, TransientError)
        assert outcome.message.startswith(f"HTTP {status[:3]} redirect to {elsewhere.url}/input/bulk.json")
        assert len(emoncms.requests) == 1
        assert elsewhere.requests == []


def test_a_relative_redirect_is_told_as_an_absolute_address() -> None:
    with ScriptedServer(redirect("302 Found", "/login")) as emoncms:
        outcome = EmoncmsClient(emoncms.url + "/emoncms", WRITE_KEY, timeout=5).send(ROWS, sentat=1)

    assert isinstance(outcome, TransientError)
    assert f"redirect to {emoncms.url}/login:" in outcome.message


@pytest.mark.parametrize("part", ["head", "body"])
def test_an_answer_dripping_a_byte_a_second_ends_at_the_timeout(part: str) -> None:
    """Each byte arrives well within the per-read timeout, so only a deadline on the whole request ends it; the
    full answer would take 40 s or more."""
    with ScriptedServer(drip(part, seconds_per_byte=1.0)) as server:
        client = EmoncmsClient(server.url, WRITE_KEY, timeout=1.5)
        started = time.monotonic()
        outcome = client.send(ROWS, sentat=1)
        elapsed = time.monotonic() - started

    assert isinstance(outcome, TransientError)
    assert outcome.kind == "timeout"
    assert "within 1.5 s" in outcome.message
    assert elapsed < 15  # generous for a loaded machine; the answer would take 40 s or more


def test_an_answer_too_big_is_not_read() -> None:
    huge = HugeAnswer(50 * 1024 * 1024)
    with ScriptedServer(huge) as server:
        outcome = EmoncmsClient(server.url, WRITE_KEY, timeout=30).send(ROWS, sentat=1)

    assert isinstance(outcome, TransientError)
    assert (outcome.kind, outcome.message) == (
        "http", f"HTTP 200: an answer over {MAX_ANSWER_BYTES // 1024} KiB, not emoncms's (a proxy or a captive "
                "portal?); not read")
    assert huge.sent < huge.size // 2  # the client closed the connection long before the end


def test_abort_ends_a_request_in_flight_and_refuses_later_ones(fake: FakeEmoncms) -> None:
    client = EmoncmsClient(fake.url, WRITE_KEY, timeout=60)
    fake.hold = threading.Event()  # stored, answer held back
    outcomes: list[Outcome] = []
    sender = threading.Thread(target=lambda: outcomes.append(client.send(ROWS, sentat=1)))
    sender.start()
    try:
        while not fake.recorded():
            time.sleep(0.01)
        client.abort()
        sender.join(10)
        assert not sender.is_alive()
    finally:
        fake.hold.set()

    (outcome,) = outcomes
    assert isinstance(outcome, TransientError)
    assert outcome.kind == "timeout"
    assert client.send(ROWS, sentat=1) == TransientError("connection", "not sent: the forwarder is stopping")
    assert len(fake.recorded()) == 1


def test_node_limit_is_a_content_error_marked_as_such() -> None:
    outcome = classify(200, '{"success":false,"message":"Error: Reached the maximal allowed number of '
                            'different NodeIds, limit is 32"}')
    assert isinstance(outcome, ContentError)
    assert outcome.node_limit
    assert not ContentError("Format error, json value is not numeric").node_limit


def test_send_posts_form_data_with_bearer_header_and_sentat(fake: FakeEmoncms) -> None:
    client = EmoncmsClient(fake.url, WRITE_KEY, timeout=5)
    outcome = client.send(ROWS, sentat=int(START))

    assert outcome == Ok()
    (request,) = fake.recorded()
    assert request.method == "POST"
    assert request.url == f"/emoncms/input/bulk.json?sentat={int(START)}"  # self-hosted prefix kept
    assert request.headers["Authorization"] == f"Bearer {WRITE_KEY}"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    data = parse_qs(request.body.decode())["data"][0]
    assert data == '[[1780315500,"mppt",{"V":26180,"PPV":92}],[1780315500,"serre-été",{"temp":21.5}]]'
    assert fake.stored() == [Point("mppt", "V", 1780315500, 26180.0), Point("mppt", "PPV", 1780315500, 92.0),
                             Point("serre-été", "temp", 1780315500, 21.5)]


def test_encoding_has_no_backslash_escapes() -> None:
    assert "\\" not in encode_rows(ROWS)


@pytest.mark.parametrize(("key", "kind"), [("0" * 32, "401"), (READ_KEY, "empty")])
def test_wrong_or_read_key_is_an_auth_error(fake: FakeEmoncms, key: str, kind: str) -> None:
    outcome = EmoncmsClient(fake.url, key, timeout=5).send(ROWS, sentat=int(START))

    assert isinstance(outcome, AuthError)
    assert ("401" in outcome.message) == (kind == "401")
    assert key not in outcome.message
    assert fake.stored() == []


def test_content_error_carries_the_server_message(fake: FakeEmoncms) -> None:
    outcome = EmoncmsClient(fake.url, WRITE_KEY, timeout=5).send([Row(1, "n", {"x": math.nan})], sentat=1)
    assert outcome == ContentError("Format error, json string supplied is not valid")


def test_transient_failures(fake: FakeEmoncms) -> None:
    client = EmoncmsClient(fake.url, WRITE_KEY, timeout=10)  # ample: these fail at once, not by the timeout

    with fake.down():
        refused = client.send(ROWS, sentat=1)
    fake.drop_connections = True
    dropped = client.send(ROWS, sentat=1)
    fake.drop_connections = False
    fake.fail_status = 503
    server_error = client.send(ROWS, sentat=1)
    fake.fail_status = None
    fake.delay = 1.0
    slow = EmoncmsClient(fake.url, WRITE_KEY, timeout=0.3).send(ROWS, sentat=1)

    assert isinstance(refused, TransientError)
    assert refused.kind == "connection"
    assert "Connection refused" in refused.message
    assert isinstance(dropped, TransientError)
    assert dropped.kind == "connection"
    assert isinstance(server_error, TransientError)
    assert (server_error.kind, server_error.message[:8]) == ("http", "HTTP 503")
    assert isinstance(slow, TransientError)
    assert slow.kind == "timeout"


def test_a_key_requests_refuses_as_a_header_is_an_auth_error_without_the_key(fake: FakeEmoncms) -> None:
    key = f"# emoncms write key\n{WRITE_KEY}"  # a key file with a comment line

    outcome = EmoncmsClient(fake.url, key, timeout=5).send(ROWS, sentat=1)

    assert isinstance(outcome, AuthError)
    assert "InvalidHeader" in outcome.message
    assert WRITE_KEY not in outcome.message
    assert "emoncms write key" not in outcome.message
    assert fake.recorded() == []


def test_any_other_request_failure_is_told_by_its_type_only(fake: FakeEmoncms) -> None:
    outcome = EmoncmsClient(fake.url, f"{WRITE_KEY}€", timeout=5).send(ROWS, sentat=1)  # not latin-1

    assert isinstance(outcome, TransientError)
    assert outcome.kind == "http"
    assert outcome.message.endswith("(UnicodeEncodeError)")
    assert "€" not in outcome.message
    assert "20ac" not in outcome.message.lower()


@pytest.mark.parametrize(
    ("text", "secret", "expected"),
    [
        (f"header value: 'Bearer {WRITE_KEY}'", WRITE_KEY, "header value: 'Bearer ****'"),
        ("value: 'Bearer # my key\\nabcdef0123456789'", "# my key\nabcdef0123456789", "value: 'Bearer ****'"),
        ("only the second line: abcdef0123456789.", "# my key\nabcdef0123456789", "only the second line: ****."),
        ("the first line: # my emoncms key", "# my emoncms key\nabcdef0123456789", "the first line: ****"),
        ("ascii escape: k\\u20ac0123456789", "k€0123456789", "ascii escape: ****"),
        ("the API key is refused", "# my key\nabcdef0123456789", "the API key is refused"),  # short words stay
        ("no key configured", "", "no key configured"),
    ],
)
def test_scrub(text: str, secret: str, expected: str) -> None:
    assert scrub(text, secret) == expected
