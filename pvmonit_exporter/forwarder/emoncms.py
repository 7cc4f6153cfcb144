"""The emoncms `input/bulk` client and the classification of its answers.

emoncms answers nearly everything with HTTP 200, so the status alone proves nothing. The body decides:

* `ok` with a 2xx status → `Ok`: the rows are stored and may leave the queue.
* 401 (`Invalid API key`), or 200 with an empty body (no key, or the READ key) → `AuthError`: keep every row,
  back off, tell the operator; retrying will not help until the key is fixed.
* `{"success": false, "message": …}` → `ContentError`: something in the rows (or the account's node limit) is
  refused; the caller isolates the offending rows.
* a redirect (3xx) → `TransientError`: it is never followed, because only emoncms itself answering `ok` proves
  the rows are stored (another host answering `ok` after a 302 proves nothing); the message names the target.
* connection refused or reset, timeouts, 5xx and any other answer → `TransientError`: keep, retry later.

A request is bounded as a whole: `timeout` covers connecting, sending and the complete answer (a server dripping
a byte a second is cut off, see `deadline`), and an answer longer than 64 KiB is not read (emoncms answers `ok`
or a short JSON object; anything bigger is some other server's page).

The write key travels only in the `Authorization: Bearer` header: never in a URL (web-server access logs, our
own logs) and never in a message built here. An exception's text can quote the request's headers (requests'
`InvalidHeader` does), so only connection errors and timeouts contribute their text, and every message
`EmoncmsClient.send` returns passes through `scrub` as well.
"""

import json
import re
import threading
from collections.abc import Sequence
from dataclasses import replace
from urllib.parse import urljoin

import requests

from pvmonit_exporter import __version__
from pvmonit_exporter.forwarder.deadline import Deadline, deadline_session
from pvmonit_exporter.forwarder.outcome import AuthError, ContentError, Ok, Outcome, TransientError
from pvmonit_exporter.forwarder.snapshot import Row
from pvmonit_exporter.safe_text import mask_url, url_secrets

_BODY_EXCERPT = 200
MAX_ANSWER_BYTES = 64 * 1024
_READ_CHUNK = 8192
SCRUBBED = "****"
# Lines and words of a key at least this long are scrubbed on their own too (shorter ones are ordinary words).
_SCRUB_MIN_PART = 8
_REASON_RE = re.compile(r"\[Errno -?\d+\][^'\")]*|RemoteDisconnected\([^)]*\)|Connection aborted|"
                        r"Connection reset by peer")




def _excerpt(body: str) -> str:
    text = " ".join(body.split())
    return text if len(text) <= _BODY_EXCERPT else text[:_BODY_EXCERPT] + "…"


def classify(status: int, body: str, location: str | None = None) -> Outcome:
    """What one `input/bulk` answer means (see the module docstring); `location` is a redirect's target."""
    if 300 <= status < 400:
        target = _excerpt(location) if location else "nowhere (no Location header)"
        return TransientError("http", f"HTTP {status} redirect to {target}: not followed, rows are kept until "
                                      "emoncms itself answers ok; set emoncms.url to the address emoncms answers at")
    if status == 401:
        return AuthError(f"HTTP 401 {_excerpt(body) or 'Unauthorized'}: the API key is not valid")
    if 200 <= status < 300:
        if body == "ok":
            return Ok()
        if not body.strip():
            return AuthError("empty answer: the API key is missing or is the read-only key (use the write key)")
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        if isinstance(answer, dict) and answer.get("success") is False:
            return ContentError(str(answer.get("message", "")) or "success: false without a message")
        return TransientError("http", f"unexpected answer (HTTP {status}): {_excerpt(body)}")
    return TransientError("http", f"HTTP {status}: {_excerpt(body)}")


def scrub(text: str, secret: str) -> str:
    """`text` with every trace of `secret` replaced by `****`: the secret itself, its escaped forms (as `repr()`
    writes it into an exception's message) and each of its lines and words of 8 characters or more."""
    if not secret:
        return text
    parts = {secret, repr(secret)[1:-1], secret.encode("unicode_escape").decode("ascii")}
    for piece in (*secret.splitlines(), *secret.split()):
        if len(piece.strip()) >= _SCRUB_MIN_PART:
            parts.add(piece.strip())
    for part in sorted(parts, key=len, reverse=True):
        text = text.replace(part, SCRUBBED)
    return text


def encode_rows(rows: Sequence[Row]) -> str:
    """The `data` field: compact JSON, non-ASCII kept as is (emoncms runs `stripslashes` on every parameter,
    so a `\\u00e9` escape would reach its JSON parser as `u00e9`)."""
    return json.dumps([row.to_json() for row in rows], separators=(",", ":"), ensure_ascii=False)


class EmoncmsClient:
    """Posts rows to `<url>/input/bulk.json`, one request at a time; `abort()` may be called from any thread."""

    def __init__(self, url: str, apikey: str, timeout: float) -> None:
        self._url, self._shown_url = url, mask_url(url)
        self.endpoint = url.rstrip("/") + "/input/bulk.json"
        self.post_endpoint = url.rstrip("/") + "/input/post.json"
        self.timeout = timeout
        self._session = deadline_session()
        self._lock = threading.Lock()  # guards the two fields below
        self._deadline: Deadline | None = None  # the request in flight's
        self._aborted = False
        self._apikey = apikey
        self._headers = {
            "Authorization": f"Bearer {apikey}",  # case-sensitive `Bearer `: emoncms ignores `bearer`
            "User-Agent": f"pvmonit-exporter/{__version__}",
        }

    @property
    def shown_url(self) -> str:
        """This client's emoncms URL as it may be shown: its credentials masked (`display.mask_url`)."""
        return self._shown_url

    def scrub(self, text: str) -> str:
        """`text` without any trace of this client's key (see `scrub`) nor of the credentials in its URL: the URL
        itself is shown masked, then each of its secrets, however spelt, is scrubbed wherever it appears."""
        text = scrub(text, self._apikey).replace(self._url, self._shown_url)
        for secret in url_secrets(self._url):
            text = scrub(text, secret)
        return text

    def send(self, rows: Sequence[Row], sentat: int) -> Outcome:
        """POST `rows`; `sentat` is our clock now, so emoncms corrects row times for our clock's skew."""
        outcome = self._post(self.endpoint, {"sentat": str(sentat)}, {"data": encode_rows(rows)})
        if isinstance(outcome, Ok):
            return outcome
        return replace(outcome, message=self.scrub(outcome.message))

    def check_write_access(self) -> Outcome:
        """POST `input/post` without data, which stores nothing: emoncms answers a write key with ContentError
        `Request contains no data via csv, json or data tag`, a read key (or none) with an empty 200 and a wrong
        key with a 401, both AuthError."""
        outcome = self._post(self.post_endpoint, {}, {})
        if isinstance(outcome, Ok):
            return outcome
        return replace(outcome, message=self.scrub(outcome.message))

    def abort(self) -> None:
        """End the request in flight now (its rows stay queued) and refuse any later one: for shutting down."""
        with self._lock:
            self._aborted = True
            if self._deadline is not None:
                self._deadline.expire()

    def _post(self, endpoint: str, params: dict[str, str], form: dict[str, str]) -> Outcome:
        deadline = Deadline(self.timeout)
        with self._lock:
            if self._aborted:
                return TransientError("connection", "not sent: the forwarder is stopping")
            self._deadline = deadline
        try:
            return self._exchange(endpoint, params, form, deadline)
        finally:
            with self._lock:
                self._deadline = None

    def _exchange(self, endpoint: str, params: dict[str, str], form: dict[str, str], deadline: Deadline) -> Outcome:
        late = TransientError("timeout", f"no complete answer from {endpoint} within {self.timeout:g} s")
        if self._aborted:
            late = TransientError("timeout", f"no answer from {endpoint}: the forwarder is stopping")
        try:
            with deadline, self._session.post(
                endpoint,
                params=params,
                data=form,
                headers=self._headers,
                timeout=self.timeout,
                allow_redirects=False,  # see the module docstring: a 3xx is a failure
                stream=True,  # the answer is read below, bounded in size
            ) as response:
                body = _read_capped(response)
        except requests.Timeout as exc:
            return TransientError("timeout", f"{late.message} ({type(exc).__name__})")
        except requests.ConnectionError as exc:
            if deadline.expired:
                return late
            return TransientError("connection", f"cannot reach {endpoint}: {_reason(exc)}")
        except requests.exceptions.InvalidHeader as exc:
            # Our only variable header is the key's: its text quotes the header, key and all.
            return AuthError(f"the API key cannot be sent ({type(exc).__name__}): it contains a character an "
                             "HTTP header cannot carry (a line break, a second line in the key file?)")
        except (requests.RequestException, ValueError) as exc:
            if deadline.expired:
                return late
            # InvalidURL, a header http.client cannot encode (UnicodeEncodeError), an unreadable answer…: their
            # text may quote the request, key included — only the type is told.
            return TransientError("http", f"cannot send to {endpoint} or read its answer "
                                          f"({type(exc).__name__})")
        if deadline.expired:  # an answer cut short by the deadline is no answer
            return late
        if body is None:
            return TransientError("http", f"HTTP {response.status_code}: an answer over {MAX_ANSWER_BYTES // 1024} "
                                          "KiB, not emoncms's (a proxy or a captive portal?); not read")
        location = response.headers.get("Location")
        return classify(response.status_code, body, location and urljoin(endpoint, location))

    def close(self) -> None:
        self._session.close()


def _read_capped(response: requests.Response) -> str | None:
    """The answer's text, or None when it is longer than `MAX_ANSWER_BYTES` (the rest is never read)."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(_READ_CHUNK):
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            return None
        chunks.append(chunk)
    # emoncms (PHP) writes UTF-8 and names no charset; requests would assume ISO-8859-1 for text/plain.
    named = "charset=" in response.headers.get("Content-Type", "").lower()
    body = b"".join(chunks)
    try:
        return body.decode(response.encoding if named and response.encoding else "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return body.decode("utf-8", errors="replace")


def _reason(exc: BaseException) -> str:
    """The useful part of a requests error (`[Errno 111] Connection refused`), not urllib3's nesting."""
    text = str(exc)
    match = _REASON_RE.search(text)
    return match.group(0).strip() if match else (_excerpt(text) or type(exc).__name__)
