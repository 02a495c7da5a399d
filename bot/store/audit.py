"""The audit family: who did what to which target, and how it went."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.records import AuditEntry
from bot.store.tables import audit

__all__ = ["AuditLog"]


class AuditLog:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def record(
        self,
        *,
        user_id: str | None,
        action: str,
        target: str,
        outcome: str,
        now: datetime,
        detail: str = "",
        right: str | None = None,
    ) -> None:
        """``right``: the right that let the action through (``bot.service.rights.Right``)."""
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(audit).values(
                    at=now,
                    user_id=user_id,
                    action=action,
                    target=target[:200],
                    outcome=outcome,
                    detail=detail,
                    right_used=right,
                )
            )

    async def entries(self, *, limit: int = 100, action: str | None = None) -> list[AuditEntry]:
        """The latest entries first; only those of ``action`` when given."""
        query = select(audit).order_by(audit.c.id.desc()).limit(limit)
        if action is not None:
            query = query.where(audit.c.action == action)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [
            AuditEntry(
                id=r["id"],
                at=r["at"],
                user_id=r["user_id"],
                action=r["action"],
                target=r["target"],
                outcome=r["outcome"],
                detail=r["detail"],
                right=r["right_used"],
            )
            for r in rows
        ]
