"""The emoncms forwarder: snapshots of the state into a crash-safe disk queue, flushed to emoncms's bulk API."""
