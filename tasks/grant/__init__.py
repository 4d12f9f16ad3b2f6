"""Upload grants: one object, a server-chosen key, for a client without AWS credentials."""
