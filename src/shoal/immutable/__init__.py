"""Immutable (CHK) files: pure encoder and decoder, and the shells that drive them."""
