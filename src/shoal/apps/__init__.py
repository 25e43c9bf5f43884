"""Application interfaces served on the grid: the Soledad-compatible blob service
(shoal.apps.blobs), the BlobManager client and the Blockstack storage driver.

Apps sit above directories and the checker and below the web API: they use
immutable and mutable files, directories and the storage broker, never the
node, the web API or the CLI.
"""
