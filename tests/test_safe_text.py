"""Text shown to people (logs, /api/state, `check-config`): URL passwords masked, control characters escaped."""

import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, unquote

import pytest

from pvmonit_exporter.forwarder.emoncms import EmoncmsClient
from pvmonit_exporter.safe_text import escape_control, mask_url, url_credentials_problem, url_secrets
from tests.forwarder.fake_emoncms import WRITE_KEY
from tests.forwarder.test_emoncms_client import ROWS

# Every way a credential can be spelt in a URL → how it is shown. Parsed as urllib3 parses it for requests:
# the authority ends at the first '/', '?' or '#', the user information at its last '@'.
URL_SPELLINGS = [
    ("http://user:pw@host/", "http://user:****@host/"),
    ("https://me:p@ss:w0rd@emon.local:8443/emoncms", "https://me:****@emon.local:8443/emoncms"),
    ("http://:onlypw@host", "http://:****@host"),
    ("http://TOKEN@host/emoncms", "http://****@host/emoncms"),  # a user name alone is a credential (a token)
    ("http://u:pa%2Fss%23%3F%40@host", "http://u:****@host"),  # '/', '#', '?', '@' percent-encoded
    ("http://u:pa ss@host", "http://u:****@host"),  # a space
    ("http://u:@host", "http://u:****@host"),
    ("HTTP://u:pw@[::1]:80/x", "http://u:****@[::1]:80/x"),
    ("http://host/x?apikey=0123", "http://host/x?****"),  # a query or fragment may hold a key
    ("http://host/x#0123", "http://host/x#****"),
    ("http://host:8080/emoncms", "http://host:8080/emoncms"),
    # Where the password ends cannot be known: all after the scheme is masked.
    ("http://u:pa/ss@host", "http://****"),
    ("http://u:pa#ss@host", "http://****"),
    ("http://u:pa?ss@host", "http://****"),
    ("http://host:8080/path?q=a:b@c", "http://****"),
    ("u:secret@host", "****"),
    ("http://u:pw@[::1/", "http://****"),
]


@pytest.mark.parametrize(("url", "expected"), URL_SPELLINGS)
def test_mask_url(url: str, expected: str) -> None:
    assert mask_url(url) == expected


@pytest.mark.parametrize(
    ("url", "secrets"),
    [
        ("http://user:pw@host/", {"user:pw", "pw"}),
        ("http://TOKEN@host", {"TOKEN"}),
        ("http://u:pa%2Fss@host", {"u:pa%2Fss", "u:pa/ss", "pa%2Fss", "pa/ss"}),
        ("http://u:pa ss@host", {"u:pa ss", "pa ss", "u:pa%20ss", "pa%20ss"}),
        ("http://u:pa/ss@host", {"u:pa/ss@host", "u:pa%2Fss%40host"}),
        ("http://host/x?k=1&j=a b", {"k=1&j=a b", "k=1&j=a%20b"}),
        ("http://host/", set()),
    ],
)
def test_url_secrets(url: str, secrets: set[str]) -> None:
    assert set(url_secrets(url)) >= secrets
    assert all(secret not in mask_url(url) for secret in url_secrets(url))


@pytest.mark.parametrize(("url", "refused"), [(url, mask_url(url) in ("http://****", "****"))
                                              for url, _ in URL_SPELLINGS])
def test_a_url_whose_credentials_cannot_be_told_apart_has_a_problem(url: str, refused: bool) -> None:
    assert (url_credentials_problem(url) is not None) == refused


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("21.5 °C", "21.5 °C"),
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("line\nERROR forged", "line\\nERROR forged"),
        ("nul\x00 bell\x07 del\x7f", "nul\\x00 bell\\x07 del\\x7f"),
        ("c1\x9b and sep\u2028", "c1\\x9b and sep\\u2028"),
    ],
)
def test_escape_control(text: str, expected: str) -> None:
    assert escape_control(text) == expected
    assert escape_control(text).isprintable()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(("userinfo", "shown"), [("pvmonit:hunter2hunter2", "pvmonit:****"),
                                                ("pvmonit:hunter2%20hunter2", "pvmonit:****"),
                                                ("pvmonit:hunter2%2Fhunter2", "pvmonit:****"),
                                                ("hunter2hunter2", "****")])
def test_the_emoncms_client_never_shows_a_url_credential(userinfo: str, shown: str) -> None:
    """A real request to a port nobody listens on: the error names the URL, without its credentials, however
    an exception quotes them (as written, decoded, encoded)."""
    url = f"http://{userinfo}@127.0.0.1:{closed_port()}"
    client = EmoncmsClient(url, WRITE_KEY, timeout=5)
    outcome = client.send(ROWS, sentat=1)
    message = getattr(outcome, "message", "")
    assert f"{shown}@127.0.0.1" in message
    assert client.shown_url == f"http://{shown}@127.0.0.1:{url.rpartition(':')[2]}"
    secret = userinfo.rpartition(":")[2]
    quoted = client.scrub(f"emoncms at {url}/ quoted {secret}, {unquote(secret)} and {quote(unquote(secret))}")
    for text in (message, quoted, client.shown_url):
        assert "hunter2" not in text, text


@pytest.mark.slow
@pytest.mark.parametrize(
    ("url", "returncode", "stream", "masked"),
    [
        # A valid configuration: check-config prints it.
        ("http://pvmonit:hunter2hunter2@emonpi.local/emoncms", 0, "stdout",
         "url: http://pvmonit:****@emonpi.local/emoncms"),
        # A refused URL: the one-line error names it.
        ("ftp://pvmonit:hunter2hunter2@emonpi.local/", 2, "stderr", "pvmonit:****@emonpi.local"),
    ],
)
def test_check_config_masks_the_url_password(tmp_path: Path, url: str, returncode: int, stream: str,
                                             masked: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"""
devices:
  - name: mppt
    port: /dev/ttyUSB0
emoncms:
  url: {url}
  apikey: 0123456789abcdef0123456789abcdef
  queue_dir: {tmp_path / "queue"}
""", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "pvmonit_exporter", "check-config", "--config.file", str(config)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == returncode, result.stderr
    assert masked in getattr(result, stream)
    assert "hunter2" not in result.stdout + result.stderr
