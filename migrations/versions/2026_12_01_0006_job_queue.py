"""Jobs remember their queue and when a message was last sent, so the reconciler can send the
message of a queued job again after the broker lost it (``service.queue.resend_lost``).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 22:20:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | Sequence[str] | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('jobs') as batch:
        batch.add_column(sa.Column('queue', sa.String(length=255), nullable=True))
        batch.add_column(sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('jobs') as batch:
        batch.drop_column('sent_at')
        batch.drop_column('queue')
