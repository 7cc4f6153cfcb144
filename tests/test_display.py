"""Text shown to people (logs, /api/state, `check-config`): URL passwords masked, control characters escaped."""

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pvmonit_exporter.display import escape_control, mask_url_credentials
from pvmonit_exporter.forwarder.emoncms import EmoncmsClient
from tests.forwarder.fake_emoncms import WRITE_KEY
from tests.forwarder.test_emoncms_client import ROWS


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://user:pw@host/", "http://user:****@host/"),
        ("https://me:p@ss:w0rd@emon.local:8443/emoncms", "https://me:****@emon.local:8443/emoncms"),
        ("cannot reach http://u:secret@10.0.0.2/input/bulk.json: refused",
         "cannot reach http://u:****@10.0.0.2/input/bulk.json: refused"),
        ("http://:onlypw@host", "http://:****@host"),
        ("two: http://a:1@x and https://b:2@y", "two: http://a:****@x and https://b:****@y"),
        ("http://user@host/ has no password", "http://user@host/ has no password"),
        ("http://host:8080/path?q=a:b@c", "http://host:8080/path?q=a:b@c"),  # a query is not credentials
        ("no url here: a:b@c", "no url here: a:b@c"),
    ],
)
def test_mask_url_credentials(text: str, expected: str) -> None:
    assert mask_url_credentials(text) == expected


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


def test_the_emoncms_client_never_shows_a_url_password() -> None:
    """A real request to a port nobody listens on: the error names the URL, without its password."""
    client = EmoncmsClient(f"http://pvmonit:hunter2hunter2@127.0.0.1:{closed_port()}", WRITE_KEY, timeout=5)
    outcome = client.send(ROWS, sentat=1)
    message = getattr(outcome, "message", "")
    assert "pvmonit:****@127.0.0.1" in message
    assert "hunter2" not in message
    assert "hunter2" not in client.scrub("emoncms at http://pvmonit:hunter2hunter2@127.0.0.1/")


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
