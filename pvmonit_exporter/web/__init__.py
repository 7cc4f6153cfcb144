"""HTTP: /metrics, /healthz, /api/state and the live page."""
