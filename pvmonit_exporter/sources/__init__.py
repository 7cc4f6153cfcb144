"""Readers that feed the state: VE.Direct serial ports and auxiliary probes."""
