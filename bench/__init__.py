"""Benchmarks and the fault soak of the Gooten provider (not shipped in the wheel; see bench/README.md)."""
