"""The `shoal` command line: one module per command group."""
