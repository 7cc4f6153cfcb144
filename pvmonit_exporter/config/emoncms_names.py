"""Where a value lands in emoncms: the node and input names the forwarder sends under. Pure.

The snapshots use these names, and so does the configuration check that refuses two values landing on the same
node and input (one would silently overwrite the other): both follow one mapping. Nothing here imports the
configuration, so the configuration's loader can use it.
"""

from pvmonit_exporter.vedirect.fields import FIELDS, Kind


def emoncms_name(text: str) -> str:
    """A node or input name as emoncms keeps it: letters, digits, `_`, space, `-` and `.` (it drops the rest
    silently, `SER#` → `SER`). Sanitising here makes the queued row say what emoncms will store, and leaves
    nothing in the JSON that would need a backslash escape."""
    return "".join(c for c in text if c.isalnum() or c in "_-. ")


def device_node(name: str, emoncms_node: str | None) -> str:
    """A device's node: its `emoncms_node` (PvMonit's name for it, `712 Smart`), else its name."""
    return emoncms_name(emoncms_node or name)


def label_input(label: str, payload: str) -> str | None:
    """The input a VE.Direct label is sent under (`pvmonit`: the label; `si`: the metric's name), or None when
    it is never sent (text fields; with `si`, labels without a metric)."""
    spec = FIELDS.get(label)
    if spec is not None and spec.kind is Kind.TEXT:
        return None
    if payload == "si":
        return emoncms_name(spec.metric) if spec is not None and spec.metric is not None else None
    return emoncms_name(label)


def probe_inputs(name: str, emoncms_input: str | None, power_voltage: float | None, payload: str) -> tuple[str, ...]:
    """The inputs a probe's readings go to: `emoncms_input` (default: the probe's name), which holds watts for a
    current probe with `power_voltage` (PvMonit's `conso`); with the `si` payload its amperes also go to
    `<input>_current`."""
    main = emoncms_name(emoncms_input or name)
    if power_voltage is not None and payload == "si":
        return main, f"{main}_current"
    return (main,)
