"""Tierflow backend: the HTTP API over the ledger and the indexed database."""
