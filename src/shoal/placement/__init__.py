"""Where shares go: the permuted server ring (and, later, servers of happiness)."""
