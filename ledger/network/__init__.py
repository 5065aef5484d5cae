"""Networks the platform runs on in production: :mod:`ledger.network.besu` (Hyperledger Besu
with QBFT consensus)."""
