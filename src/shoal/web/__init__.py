"""The web API of a client node, one module per resource family."""
