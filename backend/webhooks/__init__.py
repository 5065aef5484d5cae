"""Webhooks (SPEC §4): members' endpoints, sealed secrets, the SSRF guard, and the dispatcher
(``tierflow webhooks``) that pushes the mirror's outbox to them; see ``docs/webhooks.md``."""
