"""Switching loads on the battery's state: rules on the live values (`decide`, pure), actuators that carry the
decisions out (`actuators`), and the thin loop between them (`loop`). Imported only when a configuration has
`actuators:` or `rules:`."""
