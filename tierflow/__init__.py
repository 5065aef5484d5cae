"""Tierflow: supply-chain finance on a permissioned EVM ledger."""
