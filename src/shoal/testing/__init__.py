"""Public test helpers: real node processes, a reactor thread, a synchronous storage client.

Nothing under src/shoal imports this package.
"""
