"""Benchmarks that print figures (not tests): `python -m benchmarks.cold_start`, `python -m benchmarks.ddb_calls`,
or `make bench` for both."""
