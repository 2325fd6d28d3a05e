"""A client of the HTTP API: the CLI's ``jobs`` and ``report`` commands."""
