"""Kafka: job events, and the partitions that decide which consumer owns a job."""
