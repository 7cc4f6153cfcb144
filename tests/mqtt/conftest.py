from tests.mqtt.broker import broker
from tests.web.conftest import browser

__all__ = ["broker", "browser"]
