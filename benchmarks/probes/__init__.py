"""Stdlib-only scripts the benchmarks run as separate processes (`python -I -S <file>`)."""
