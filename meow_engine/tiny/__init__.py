"""Tiny Llama-architecture models for tests, demos and CPU benchmarks (no downloads)."""
