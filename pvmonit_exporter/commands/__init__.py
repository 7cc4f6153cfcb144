"""Every command of `pvmonit-exporter`: the parser (`main`) and one module per command."""
