"""`check-config --emoncms`: does the URL answer as emoncms, and may the key write? Asked without writing.

emoncms has no "who am I" call for a key, but `input/post` without data stores nothing and answers differently
per key (reference emoncms-api.md): a write key gets `{"success": false, "message": "Request contains no data
via csv, json or data tag"}`, the read key (or none) an empty 200, a wrong key a 401 `Invalid API key`.
`judge` turns that answer into findings (pure); `check_emoncms` asks.
"""

from pvmonit_exporter.commands.findings import Finding
from pvmonit_exporter.config import EmoncmsConfig
from pvmonit_exporter.forwarder.emoncms import EmoncmsClient
from pvmonit_exporter.forwarder.outcome import AuthError, ContentError, Ok, Outcome, TransientError

NO_DATA_MESSAGE = "Request contains no data via csv, json or data tag"


def judge(url: str, outcome: Outcome) -> list[Finding]:
    """What emoncms's answer to a post without data says about the URL and the key."""
    if isinstance(outcome, ContentError) and NO_DATA_MESSAGE in outcome.message:
        return [Finding(True, f"{url} answers as emoncms"),
                Finding(True, f"the key may write (a post without data was answered {outcome.message!r}; "
                              "nothing was written)")]
    if isinstance(outcome, AuthError):
        return [Finding(True, f"{url} answers"),
                Finding(False, f"the key may not write: {outcome.message}")]
    if isinstance(outcome, TransientError) and outcome.kind in ("connection", "timeout"):
        return [Finding(False, f"cannot send to emoncms: {outcome.message}")]
    if isinstance(outcome, Ok):
        return [Finding(False, f"{url} answered `ok` to a post without data, which emoncms never does: is "
                               "emoncms.url the address of emoncms?")]
    return [Finding(False, f"{url} does not answer as emoncms: {outcome.message}")]


def check_emoncms(config: EmoncmsConfig) -> list[Finding]:
    """Ask the configured emoncms (one request, within `config.timeout`) and judge the answer."""
    client = EmoncmsClient(config.url, config.apikey, config.timeout)
    try:
        return judge(client.shown_url, client.check_write_access())
    finally:
        client.close()
