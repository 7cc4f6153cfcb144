"""The VE.Direct text protocol: pure code, no I/O and no threads.

bytes ─▶ `framing.Decoder` ─▶ blocks ─▶ `device.DeviceReadings` ─▶ `fields.decode` ─▶ SI values and words
"""
