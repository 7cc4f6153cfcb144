"""Victron Bluetooth "Instant Readout" advertisements: decoding (victron-ble), mapping to text-protocol labels."""
