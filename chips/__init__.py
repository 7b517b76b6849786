"""Chip models: specifications (TOML beside this file), synchronous and asynchronous engines."""
