"""The consumer: owns the jobs of its partitions, fires and records their callbacks."""
