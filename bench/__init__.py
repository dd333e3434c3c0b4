"""Benchmarks of the chat app: not tests. See bench/README.md for the commands."""
