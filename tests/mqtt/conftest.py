from tests.mqtt.broker import broker

__all__ = ["broker"]
