"""The SFTP frontend of a client node (Tahoe-LAFS 1.20's ``[sftpd]``).

accounts: the accounts file (key logins only); paths: SFTP paths to checked names
below an account's root; filesystem: one account's grid directory tree (coroutines
on the reactor); server: twisted.conch's SSH server and SFTP subsystem (on the reactor); service:
the listening socket and the ``[sftpd]`` configuration.
"""
