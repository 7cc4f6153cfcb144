"""`check-config --emoncms`: `judge` on every kind of answer, then real HTTP against the stand-in emoncms on
127.0.0.1 (which answers a post without data as emoncms 11.16.8 does), then the command line."""

from pathlib import Path

import pytest

from pvmonit_exporter.commands.check_emoncms import NO_DATA_MESSAGE, check_emoncms, judge
from pvmonit_exporter.commands.findings import Finding
from pvmonit_exporter.forwarder.outcome import AuthError, ContentError, Ok, Outcome, TransientError
from tests.config import run_cli
from tests.forwarder.conftest import emoncms_config
from tests.forwarder.fake_emoncms import READ_KEY, WRITE_KEY, FakeEmoncms

URL = "http://pi.local/emoncms"
WRONG_KEY = "ffffffffffffffffffffffffffffffff"

# Answer → [(ok, a fragment of the finding's line), …]
JUDGEMENTS: list[tuple[Outcome, list[tuple[bool, str]]]] = [
    (ContentError(NO_DATA_MESSAGE), [(True, f"{URL} answers as emoncms"),
                                     (True, "the key may write (a post without data was answered 'Request contains "
                                            "no data via csv, json or data tag'; nothing was written)")]),
    (AuthError("empty answer: the API key is missing or is the read-only key (use the write key)"),
     [(True, f"{URL} answers"), (False, "the key may not write: empty answer: the API key is missing or is the "
                                        "read-only key")]),
    (AuthError("HTTP 401 Invalid API key: the API key is not valid"),
     [(True, f"{URL} answers"), (False, "the key may not write: HTTP 401 Invalid API key")]),
    (TransientError("connection", "cannot reach x: [Errno 111] Connection refused"),
     [(False, "cannot send to emoncms: cannot reach x: [Errno 111] Connection refused")]),
    (TransientError("timeout", "no complete answer from x within 30 s"),
     [(False, "cannot send to emoncms: no complete answer")]),
    (TransientError("http", "HTTP 404: Not found"), [(False, f"{URL} does not answer as emoncms: HTTP 404")]),
    (ContentError("Format error, json string supplied is not valid"),
     [(False, f"{URL} does not answer as emoncms: Format error")]),
    (Ok(), [(False, "answered `ok` to a post without data, which emoncms never does")]),
]


@pytest.mark.parametrize(("outcome", "expected"), JUDGEMENTS)
def test_judge(outcome: Outcome, expected: list[tuple[bool, str]]) -> None:
    findings = judge(URL, outcome)
    assert [finding.ok for finding in findings] == [ok for ok, _ in expected]
    for finding, (_, fragment) in zip(findings, expected, strict=True):
        assert fragment in finding.text


def ask(fake: FakeEmoncms, tmp_path: Path, key: str, url: str | None = None) -> list[Finding]:
    return check_emoncms(emoncms_config(tmp_path / "queue", url or fake.url, apikey=key))


def test_the_stand_in_answers_a_post_without_data_per_key(fake: FakeEmoncms) -> None:
    """The stand-in answers as the reference says real emoncms does (pinned here, the check relies on it)."""
    answers = {key: fake.answer("POST", "/emoncms/input/post.json", {"Authorization": f"Bearer {key}"}, b"")
               for key in (WRITE_KEY, READ_KEY, WRONG_KEY, "")}
    assert answers == {
        WRITE_KEY: (200, '{"success": false, "message": "Request contains no data via csv, json or data tag"}'),
        READ_KEY: (200, ""),
        WRONG_KEY: (401, "Invalid API key"),
        "": (200, ""),
    }


def test_a_write_key_may_write_and_nothing_is_written(fake: FakeEmoncms, tmp_path: Path) -> None:
    findings = ask(fake, tmp_path, WRITE_KEY)
    assert [f.ok for f in findings] == [True, True]
    assert "the key may write" in findings[1].text
    assert fake.stored() == []
    assert fake.nodes == []
    (request,) = fake.recorded()
    assert (request.method, request.url, request.body) == ("POST", "/emoncms/input/post.json", b"")


@pytest.mark.parametrize(("key", "problem"), [(READ_KEY, "read-only key"), (WRONG_KEY, "HTTP 401 Invalid API key")])
def test_a_read_or_wrong_key_may_not_write(fake: FakeEmoncms, tmp_path: Path, key: str, problem: str) -> None:
    findings = ask(fake, tmp_path, key)
    assert [f.ok for f in findings] == [True, False]
    assert problem in findings[1].text
    assert key not in " ".join(f.text for f in findings)


def test_an_emoncms_that_is_down(fake: FakeEmoncms, tmp_path: Path) -> None:
    with fake.down():
        (finding,) = ask(fake, tmp_path, WRITE_KEY)
    assert not finding.ok
    assert finding.text.startswith(f"cannot send to emoncms: cannot reach {fake.url}/input/post.json: ")


def test_a_url_that_is_not_emoncms(fake: FakeEmoncms, tmp_path: Path) -> None:
    (finding,) = ask(fake, tmp_path, WRITE_KEY, url=f"http://127.0.0.1:{fake.port}/not-emoncms")
    assert not finding.ok
    assert finding.text == f"http://127.0.0.1:{fake.port}/not-emoncms does not answer as emoncms: HTTP 404: Not found"


# --- the command line --------------------------------------------------------------------------------------


def config_file(tmp_path: Path, url: str, key_line: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(f"devices:\n  - name: mppt\n    port: /dev/ttyUSB0\nemoncms:\n  url: {url}\n  {key_line}\n"
                    f"  queue_dir: {tmp_path / 'queue'}\n", encoding="utf-8")
    return path


@pytest.mark.slow
def test_check_config_emoncms_with_the_write_key(fake: FakeEmoncms, tmp_path: Path) -> None:
    config = config_file(tmp_path, fake.url, f"apikey: {WRITE_KEY}")
    result = run_cli("check-config", "--emoncms", "--config.file", str(config))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines()[-2:] == [
        f"# emoncms: {fake.url} answers as emoncms",
        "# emoncms: the key may write (a post without data was answered 'Request contains no data via csv, json "
        "or data tag'; nothing was written)",
    ]
    assert WRITE_KEY not in result.stdout
    assert fake.stored() == []
    assert not (tmp_path / "queue").exists()


@pytest.mark.slow
def test_check_config_emoncms_with_the_read_key(fake: FakeEmoncms, tmp_path: Path) -> None:
    config = config_file(tmp_path, fake.url, f"apikey: {READ_KEY}")
    result = run_cli("check-config", "--emoncms", "--config.file", str(config))
    assert result.returncode == 2
    assert result.stdout.splitlines()[-1] == f"# emoncms: {fake.url} answers"
    assert result.stderr == ("pvmonit-exporter: emoncms: the key may not write: empty answer: the API key is missing "
                             "or is the read-only key (use the write key)\n")


@pytest.mark.slow
def test_check_config_emoncms_cannot_send(fake: FakeEmoncms, tmp_path: Path) -> None:
    config = config_file(tmp_path, fake.url, f"apikey: {WRITE_KEY}")
    with fake.down():
        result = run_cli("check-config", "--emoncms", "--config.file", str(config))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"pvmonit-exporter: emoncms: cannot send to emoncms: cannot reach {fake.url}")


@pytest.mark.slow
def test_check_config_emoncms_without_the_key_file(fake: FakeEmoncms, tmp_path: Path) -> None:
    config = config_file(tmp_path, fake.url, f"apikey_file: {tmp_path / 'absent.key'}")
    result = run_cli("check-config", "--emoncms", "--config.file", str(config))
    assert result.returncode == 2
    warning, error = result.stderr.splitlines()
    assert warning.startswith("pvmonit-exporter: WARNING: ")
    assert error == f"pvmonit-exporter: {config}: --emoncms: cannot ask emoncms without the key (see the warning above)"
    assert fake.recorded() == []
