"""The node: tahoe.cfg, the node directory, and the one place services are built and wired."""
