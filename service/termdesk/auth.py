"""Who is calling: bearer tokens, their roles, and what each role may do.

Tokens are known only by their SHA-256 hashes. A tokens file holds one token a line,
`ROLE NAME sha256:HEX` (`#` starts a comment); `termdesk token ROLE NAME` makes a token
and prints its line. `TERMDESK_ADMIN_TOKEN` adds one policy-owner token named `admin`
(hashed at once). A token itself is never logged, stored or echoed; the NAME is what the
audit log records.

    evaluator      Evaluate, EvaluateBatch, GetVocabulary
    auditor        the above, and the read-only admin calls (versions, diff, impact)
    policy_owner   everything, including publish and activate
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from termdesk.errors import TermdeskError

__all__ = [
    "ADMIN_READ",
    "ADMIN_WRITE",
    "EVALUATE",
    "PermissionDeniedError",
    "Principal",
    "Role",
    "TokenError",
    "Tokens",
    "UnauthenticatedError",
    "hash_token",
    "new_token",
]


class Role(enum.Enum):
    EVALUATOR = "evaluator"
    POLICY_OWNER = "policy_owner"
    AUDITOR = "auditor"


EVALUATE = frozenset(Role)
ADMIN_READ = frozenset({Role.POLICY_OWNER, Role.AUDITOR})
ADMIN_WRITE = frozenset({Role.POLICY_OWNER})


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: Role


ANONYMOUS = Principal("anonymous", Role.EVALUATOR)


class UnauthenticatedError(TermdeskError):
    """No bearer token, or one no configured token hashes to."""


class PermissionDeniedError(TermdeskError):
    """A known token whose role may not make the call."""


class TokenError(TermdeskError):
    """The tokens file cannot be read or has a bad line."""


def hash_token(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "tdk_" + secrets.token_urlsafe(32)


class Tokens:
    """The configured tokens, by hash."""

    def __init__(self, principals: Mapping[str, Principal] | None = None) -> None:
        self._by_hash = dict(principals or {})

    @classmethod
    def load(cls, file: Path | None = None, admin_token: str = "") -> Tokens:
        principals: dict[str, Principal] = {}
        if file is not None:
            principals.update(_read_file(file))
        if admin_token:
            principals[hash_token(admin_token)] = Principal("admin", Role.POLICY_OWNER)
        return cls(principals)

    @property
    def admin_enabled(self) -> bool:
        """True when some token may use the admin service."""
        return any(p.role in ADMIN_READ for p in self._by_hash.values())

    def authenticate(self, metadata: Iterable[tuple[str, str | bytes]]) -> Principal:
        """The principal of the call's `authorization: Bearer <token>` metadata."""
        values = [value for key, value in metadata if key.lower() == "authorization"]
        if not values:
            raise UnauthenticatedError("no bearer token: send `authorization: Bearer <token>`")
        value = values[0] if isinstance(values[0], str) else values[0].decode(errors="replace")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise UnauthenticatedError("the `authorization` metadata is not `Bearer <token>`")
        return self.principal(token.strip())

    def principal(self, token: str) -> Principal:
        """The principal a token stands for; raises `UnauthenticatedError`."""
        principal = self._by_hash.get(hash_token(token)) if token else None
        if principal is None:
            raise UnauthenticatedError("unknown or revoked token")
        return principal

    @staticmethod
    def authorize(principal: Principal, allowed: frozenset[Role], action: str) -> None:
        if principal.role not in allowed:
            roles = " or ".join(sorted(role.value for role in allowed))
            raise PermissionDeniedError(
                f"`{principal.name}` ({principal.role.value}) may not call {action}; "
                f"it needs a {roles} token"
            )


def _read_file(file: Path) -> dict[str, Principal]:
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        raise TokenError(f"{file}: {error.strerror or error}") from error
    principals: dict[str, Principal] = {}
    roles = ", ".join(role.value for role in Role)
    for number, line in enumerate(text.splitlines(), start=1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) != 3 or not words[2].startswith("sha256:") or len(words[2]) != 71:
            raise TokenError(
                f"{file}:{number}: expected `ROLE NAME sha256:HEX` (the hash of the token, "
                "never the token; `termdesk token ROLE NAME` writes such a line)"
            )
        try:
            role = Role(words[0])
        except ValueError:
            raise TokenError(
                f"{file}:{number}: unknown role `{words[0]}`; roles: {roles}"
            ) from None
        principals[words[2].lower()] = Principal(words[1], role)
    return principals
