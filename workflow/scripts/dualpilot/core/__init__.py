"""Contracts every part of the project shares: the error types (errors) and the tidy estimate format (tidy)."""
