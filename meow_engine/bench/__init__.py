"""Benchmarks behind ``meow bench``: timed, reproducible comparisons recorded as JSON."""
