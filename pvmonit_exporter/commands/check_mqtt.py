"""`check-config --mqtt`: connect to the broker, say whether this client may publish under the prefix (a message
sent there comes back), and list what Home Assistant would be told: each device's object id and topics, each
actuator's, and the entities per value (the table)."""

import threading
import time
import uuid
from collections.abc import Sequence

from pvmonit_exporter.commands.findings import Finding
from pvmonit_exporter.config import Config, MqttConfig
from pvmonit_exporter.config.mqtt_ids import device_identifier, object_id
from pvmonit_exporter.mqtt.connection import MqttConnection
from pvmonit_exporter.mqtt.homeassistant import Topics, actuator_object_id_source, entity_for, every_metric

CONNECT_SECONDS = 10.0
ECHO_SECONDS = 5.0


def check_broker(config: MqttConfig) -> list[Finding]:
    """Connect (with its own client id and no will: the daemon may be running) and publish one message under
    the prefix, subscribed to it: it comes back when the broker lets this user publish and read there."""
    connection = MqttConnection(config, f"{config.client_id}-check", will=False)
    connection.start()
    try:
        if not connection.wait_connected(CONNECT_SECONDS):
            why = connection.snapshot().last_error or f"no answer within {CONNECT_SECONDS:g} s"
            return [Finding(False, f"cannot connect to {config.url}: {why}")]
        findings = [Finding(True, f"connected to {config.url} as {config.client_id}-check")]
        topic = f"{config.topic_prefix}/check-config/{uuid.uuid4().hex}"
        echoed = threading.Event()
        connection.subscribe(topic, lambda _topic, _payload: echoed.set())
        time.sleep(0.2)  # the subscription is acknowledged before the message is sent
        connection.publish(topic, "check", qos=1)
        if echoed.wait(ECHO_SECONDS):
            findings.append(Finding(True, f"may publish under {config.topic_prefix}/"))
        else:
            findings.append(Finding(False, f"a message published to {topic} did not come back within "
                                           f"{ECHO_SECONDS:g} s: the broker's ACL may refuse publishing (or "
                                           f"reading) under {config.topic_prefix}/"))
        return findings
    finally:
        connection.stop()


def announcement_lines(config: Config) -> Sequence[str]:
    """What Home Assistant would be told, one line each."""
    mqtt = config.mqtt
    if mqtt is None:
        return []
    topics = Topics(mqtt.topic_prefix, mqtt.discovery_prefix)
    lines = []
    for device in config.devices:
        if device.serial_number or device.ble_address:
            found = object_id(device_identifier(device.serial_number or "", device.ble_address, device.name))
        else:
            found = f"{object_id('')}<its SER#, lower case> (or {object_id(device.name)} if it sends none)"
        lines.append(f"device {device.name}: {topics.discovery(found)}, state on {topics.state(device.name)}")
    for probe in config.probes:
        lines.append(f"probe {probe.name}: {topics.discovery(object_id(probe.name))}, state on "
                     f"{topics.state(probe.name)}")
    for actuator in config.actuators:
        line = f"actuator {actuator.name}: state on {topics.actuator_state(actuator.name)}"
        if mqtt.homeassistant:
            found = object_id(actuator_object_id_source(actuator.name))
            line = (f"actuator {actuator.name}: {topics.discovery(found)} (a switch and a select), state on "
                    f"{topics.actuator_state(actuator.name)}, commands on {topics.actuator_switch(actuator.name)} "
                    f"(ON, OFF) and {topics.actuator_mode(actuator.name)} (auto, on, off)")
        lines.append(line)
    if not mqtt.homeassistant:
        lines.append("homeassistant: false: no discovery is published, no command is taken")
        return lines
    lines.append("entities, one per value a device gives (device class, state class, unit):")
    for metric in every_metric():
        entity = entity_for(metric)
        if entity is None:
            continue
        shown = ", ".join(part or "-" for part in (entity.device_class, entity.state_class, entity.unit))
        lines.append(f"  {entity.component} <object_id>_{metric}: {shown}")
    return lines
