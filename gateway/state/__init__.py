"""Shared state that may be lost: the key-value store in memory or on Redis."""
