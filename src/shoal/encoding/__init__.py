"""Byte encodings Tahoe-LAFS uses on the wire and in caps: base32 and netstrings."""
