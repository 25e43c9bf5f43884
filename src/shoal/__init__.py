"""shoal: an erasure-coded, end-to-end-encrypted storage grid, byte-compatible with Tahoe-LAFS 1.20."""

__version__ = "0.1.0"
