"""MQTT: every device's state and Home Assistant discovery on a broker (`publisher`), over one paho-mqtt
connection (`connection`). Imported only when the configuration has an `mqtt:` section: paho-mqtt is the optional
`[mqtt]` extra, and a daemon without MQTT loads none of it."""

MISSING_EXTRA = "mqtt: needs the [mqtt] extra (paho-mqtt 2.x): pip install 'pvmonit-exporter[mqtt]'"
