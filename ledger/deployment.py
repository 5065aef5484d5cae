"""The deployment record: which contracts live where on a chain, and from which block.

A deployment is stored as ``chain/deployments/<chainId>.json``::

    {"chainId": 31337,
     "contracts": {"MemberRegistry": {"address": "0x…", "startBlock": 1}, …},
     "parameters": {…}}

``contracts`` is the SPEC §5 shape the indexer and the API read; ``parameters`` records the
deployment parameters (term cap, grace period, …) so that a re-run can tell whether the
deployed suite is the one asked for.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from eth_utils.address import to_checksum_address

from ledger.errors import ConfigurationError
from ledger.paths import repo_root

#: Deployment order. Every constructor takes all five addresses, predicted from the deployer's
#: nonce (the ``Platform`` struct, see ``ledger.deploy``); the forwarder comes first.
SUITE: tuple[str, ...] = (
    "TierflowForwarder",
    "MemberRegistry",
    "InvoiceRegistry",
    "ClaimLedger",
    "FinancingDesk",
)
#: The audit log's anchors (SPEC AP-3): deployed with the suite, after it, and not part of the
#: ``Platform`` struct (no other contract calls it).
AUDIT_ANCHOR = "AuditAnchor"
#: Every contract a complete deployment records.
CONTRACTS: tuple[str, ...] = (*SUITE, AUDIT_ANCHOR)

DAY = 86_400


@dataclass(frozen=True)
class DeploymentParameters:
    """Deployment-wide rules fixed at construction (SPEC §2)."""

    admin_delay_s: int = 2 * DAY
    term_cap_days: int = 365
    long_term_threshold_days: int = 180
    grace_period_days: int = 7
    trade_invoice_required: bool = False
    registration_required: bool = True
    #: The deployment's one currency (ISO 4217) and its minor-unit decimals (ERC-3525
    #: ``valueDecimals``; amounts on chain are integers in minor units).
    currency: str = "CNY"
    value_decimals: int = 2

    def __post_init__(self) -> None:
        if not 0 < self.term_cap_days <= 3650:
            raise ConfigurationError(f"term cap must be 1..3650 days, got {self.term_cap_days}")
        if not 0 <= self.long_term_threshold_days <= self.term_cap_days:
            raise ConfigurationError("the long-term threshold must lie within the term cap")
        if not 0 <= self.grace_period_days <= 365:
            raise ConfigurationError(
                f"grace period must be 0..365 days, got {self.grace_period_days}"
            )
        if not 0 <= self.admin_delay_s < 2**48:
            raise ConfigurationError("admin delay out of range")
        if not (len(self.currency) == 3 and self.currency.isascii() and self.currency.isupper()):
            raise ConfigurationError(f"currency must be an ISO 4217 code, got {self.currency!r}")
        if not 0 <= self.value_decimals <= 18:
            raise ConfigurationError(f"value decimals must be 0..18, got {self.value_decimals}")

    def ledger_config(self) -> tuple[int, int, int, bool, int, bytes]:
        """The ``ClaimLedger.Config`` tuple."""
        return (
            self.term_cap_days * DAY,
            self.long_term_threshold_days * DAY,
            self.grace_period_days * DAY,
            self.trade_invoice_required,
            self.value_decimals,
            self.currency.encode("ascii"),
        )

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> DeploymentParameters:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in doc.items() if k in known})


@dataclass(frozen=True)
class ContractRecord:
    address: str
    start_block: int


@dataclass
class Deployment:
    """Where the suite lives on one chain.

    ``admin_timelock`` is the ``AdminTimelock`` (OpenZeppelin ``TimelockController``) that is
    the MemberRegistry's default admin when ``tierflow deploy`` made one; it is not one of the
    business contracts (no events of the suite, nothing the indexer reads), so it is kept
    apart from ``contracts``.
    """

    chain_id: int
    contracts: dict[str, ContractRecord] = field(default_factory=dict)
    parameters: DeploymentParameters = field(default_factory=DeploymentParameters)
    admin_timelock: ContractRecord | None = None

    @property
    def start_block(self) -> int:
        """The first block any of the suite's events can be in."""
        return min((c.start_block for c in self.contracts.values()), default=0)

    def address(self, name: str) -> str:
        try:
            return self.contracts[name].address
        except KeyError:
            raise ConfigurationError(f"{name} is not deployed on chain {self.chain_id}") from None

    @property
    def complete(self) -> bool:
        return all(name in self.contracts for name in CONTRACTS)

    def to_json(self) -> dict[str, Any]:
        return {
            "chainId": self.chain_id,
            "contracts": {
                name: {"address": rec.address, "startBlock": rec.start_block}
                for name, rec in self.contracts.items()
            },
            "parameters": asdict(self.parameters),
            **(
                {
                    "adminTimelock": {
                        "address": self.admin_timelock.address,
                        "startBlock": self.admin_timelock.start_block,
                    }
                }
                if self.admin_timelock is not None
                else {}
            ),
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Deployment:
        try:
            contracts = {
                name: ContractRecord(to_checksum_address(rec["address"]), int(rec["startBlock"]))
                for name, rec in doc["contracts"].items()
            }
            timelock = doc.get("adminTimelock")
            return cls(
                chain_id=int(doc["chainId"]),
                contracts=contracts,
                parameters=DeploymentParameters.from_json(doc.get("parameters", {})),
                admin_timelock=(
                    ContractRecord(
                        to_checksum_address(timelock["address"]), int(timelock["startBlock"])
                    )
                    if timelock is not None
                    else None
                ),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"malformed deployment record: {exc}") from exc


def deployments_dir() -> Path:
    return Path(os.environ.get("TIERFLOW_DEPLOYMENTS_DIR") or repo_root() / "chain" / "deployments")


def record_path(chain_id: int, directory: Path | None = None) -> Path:
    return (directory or deployments_dir()) / f"{chain_id}.json"


def load_deployment(chain_id: int, directory: Path | None = None) -> Deployment | None:
    """The recorded deployment for ``chain_id``, or None when there is none."""
    path = record_path(chain_id, directory)
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"{path} is not valid JSON: {exc}") from exc
    return Deployment.from_json(doc)


def save_deployment(deployment: Deployment, directory: Path | None = None) -> Path:
    """Write the record atomically (a crash leaves the old one or the new one, never half)."""
    path = record_path(deployment.chain_id, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(deployment.to_json(), fh, indent=2, sort_keys=False)
        fh.write("\n")
    os.replace(tmp, path)
    return path
