"""The HTTP gateway: validates jobs, stores them, publishes their events."""
