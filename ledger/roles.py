"""Role names, their on-chain ids and their bits in a role mask (mirrors ``Roles.sol``).

The API speaks the names of SPEC §4 (``core_enterprise``, ``supplier`` …); the contracts
speak role ids (AccessControl) and bit masks (``registerMember``, ``rolesOf``).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from eth_utils.crypto import keccak


class Role(StrEnum):
    OPERATOR = "operator"
    CORE_ENTERPRISE = "core_enterprise"
    SUPPLIER = "supplier"
    FINANCIER = "financier"
    CLEARING_AGENT = "clearing_agent"
    AUDITOR = "auditor"

    @property
    def role_id(self) -> bytes:
        return keccak(text=f"{self.name}_ROLE")

    @property
    def bit(self) -> int:
        return 1 << _ORDER.index(self)


_ORDER: tuple[Role, ...] = (
    Role.OPERATOR,
    Role.CORE_ENTERPRISE,
    Role.SUPPLIER,
    Role.FINANCIER,
    Role.CLEARING_AGENT,
    Role.AUDITOR,
)

DEFAULT_ADMIN_ROLE: bytes = b"\x00" * 32
#: The roles an operator grants at registration (everything but operator).
BUSINESS_ROLES: frozenset[Role] = frozenset(_ORDER[1:])


def roles_to_mask(roles: Iterable[Role]) -> int:
    mask = 0
    for role in roles:
        mask |= role.bit
    return mask


def mask_to_roles(mask: int) -> list[Role]:
    return [role for role in _ORDER if mask & role.bit]
