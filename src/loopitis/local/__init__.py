"""Real PostgreSQL and a Kafka-protocol broker started on this machine.

Tests and ``loopitis dev`` use these servers so that local runs take the same
code paths as production: no fakes, only smaller backends that live in a folder.
"""
