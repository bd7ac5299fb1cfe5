"""Benchmarks of mra against raw Kafka clients: ``python -m benchmarks`` from the repository root."""

__all__: list[str] = []
