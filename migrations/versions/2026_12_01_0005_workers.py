"""Workers: one row per live worker process and its heartbeat (``service.workers``), so readiness
can say whether a worker consumes the queue and the reaper can tell a gone node from a live one.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 22:10:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | Sequence[str] | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('workers',
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('queue', sa.String(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_workers'))
    )
    op.create_index(op.f('ix_workers_queue'), 'workers', ['queue'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_workers_queue'), table_name='workers')
    op.drop_table('workers')
