"""Cryptographic primitives shoal shares with Tahoe-LAFS 1.20: tagged hashes, AES-CTR, RSA keys."""
