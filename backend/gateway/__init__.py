"""The ledger port's implementation (:class:`Gateway`, in :mod:`backend.gateway.port`) and the
parts it is made of, a module each."""

from backend.gateway.port import Gateway

__all__ = ["Gateway"]
