"""End-to-end tests: the README's run command, and the whole scenario of ``tierflow demo``."""
