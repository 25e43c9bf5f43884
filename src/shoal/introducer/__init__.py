"""The introducer: a server that relays signed announcements, and the client every node runs."""
