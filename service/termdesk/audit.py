"""The admin audit trail: one store record and one `admin` log line per action.

The gRPC RulesetAdmin and the web console both write through `AuditTrail`, each naming
its channel, so the audit log reads the same whichever way a policy owner came in. A
token never reaches it: only the principal's name and role do.
"""

from __future__ import annotations

from termdesk.auth import Principal
from termdesk.logs import get_logger
from termdesk.store.base import AuditRecord, Store

__all__ = ["AuditTrail"]

log = get_logger("termdesk.admin")

_MAX_DETAIL = 1000


class AuditTrail:
    def __init__(self, store: Store, channel: str) -> None:
        self.store = store
        self.channel = channel

    def record(
        self,
        principal: Principal | None,
        action: str,
        target: str,
        outcome: str,
        detail: str = "",
    ) -> None:
        """Records the action; a store failure is logged, never raised (the action stands)."""
        record = AuditRecord(
            actor=principal.name if principal else "unauthenticated",
            role=principal.role.value if principal else "",
            action=action,
            target=target,
            outcome=outcome,
            detail=detail[:_MAX_DETAIL],
            channel=self.channel,
        )
        log.info(
            "admin",
            actor=record.actor,
            role=record.role,
            action=action,
            target=target,
            outcome=outcome,
            channel=self.channel,
        )
        try:
            self.store.record_audit(record)
        except Exception:
            log.exception("audit record not written", action=action, outcome=outcome)
