"""Tierflow's HTTP API: suppliers apply for financing, core enterprises confirm payables,
financiers decide, auditors query the ledger (SPEC §4)."""
