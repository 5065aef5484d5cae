"""Use cases of the API: plain async functions over a session and the gateway (no FastAPI)."""
