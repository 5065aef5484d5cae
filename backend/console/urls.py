"""The console's addresses: every link a page draws is made here, so the routes
(``backend/api/routes/console.py``) and the templates agree on one set of paths."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlencode

from backend.console.fmt import is_address, is_hash

#: Levels of the tree a page shows below its focus piece, unless asked otherwise.
DEFAULT_LEVELS = 4


@dataclass(frozen=True)
class Urls:
    """Paths under ``base`` (``/console``); ``static`` is where the committed CSS and JS are
    served from."""

    base: str = "/console"
    static_base: str = "/console/static"

    def home(self) -> str:
        return self.base

    def sign_in(self) -> str:
        return f"{self.base}/sign-in"

    def sign_out(self) -> str:
        return f"{self.base}/sign-out"

    def static(self, name: str) -> str:
        return f"{self.static_base}/{quote(name)}"

    def payable(
        self,
        payable_id: int,
        *,
        focus: int | None = None,
        page: int = 1,
        levels: int = DEFAULT_LEVELS,
        view: str | None = None,
    ) -> str:
        query: dict[str, int | str] = {}
        if focus is not None:
            query["focus"] = focus
        if page > 1:
            query["page"] = page
        if levels != DEFAULT_LEVELS:
            query["levels"] = levels
        if view:
            query["view"] = view
        path = f"{self.base}/payables/{int(payable_id)}"
        return f"{path}?{urlencode(query)}" if query else path

    def claim(self, claim_id: int) -> str:
        """A piece's page: what it is and its history of events."""
        return f"{self.base}/claims/{int(claim_id)}"

    def tx(self, tx_hash: str) -> str | None:
        """A transaction's page (None for something that is not a 32-byte hash)."""
        return f"{self.base}/tx/{tx_hash.lower()}" if is_hash(tx_hash) else None

    def events(self, **filters: str | int | None) -> str:
        query = {k: v for k, v in filters.items() if v is not None and v != ""}
        path = f"{self.base}/events"
        return f"{path}?{urlencode(query)}" if query else path

    def account(self, address: str) -> str | None:
        """What the console shows of a member: the events about it."""
        return self.events(account=address) if is_address(address) else None

    def exposure(self) -> str:
        return f"{self.base}/exposure"

    def reconciliation(self) -> str:
        return f"{self.base}/reconciliation"

    def audit_log(self) -> str:
        return f"{self.base}/audit-log"
