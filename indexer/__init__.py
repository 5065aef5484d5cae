"""Tierflow indexer: follows the chain and projects contract events into the database."""
