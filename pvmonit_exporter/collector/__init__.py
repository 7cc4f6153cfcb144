"""Prometheus collectors: each builds fresh metric families from the state at every scrape."""
