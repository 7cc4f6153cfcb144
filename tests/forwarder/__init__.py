"""Tests of the emoncms forwarder, against a fake emoncms on 127.0.0.1."""
