"""Byte formats of Tahoe-LAFS 1.20: UEB, share layouts, containers, leases, SDMF, MDMF, dirnodes."""
