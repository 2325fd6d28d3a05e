"""Postgres: the source of truth for jobs and executions."""
