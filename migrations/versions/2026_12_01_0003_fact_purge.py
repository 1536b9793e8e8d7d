"""Forget-data purge: jobs record when their facts' text was purged, what was removed, and the salt
of the facts' digests (``service.purge``).

Jobs that ended before this revision are purged by the first sweep of the API's or a worker's
reaper (``MEOW_FACT_RETENTION_S`` after they finished).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 21:45:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | Sequence[str] | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('jobs') as batch:
        batch.add_column(sa.Column('purged_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('purged', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('fact_salt', sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('jobs') as batch:
        batch.drop_column('fact_salt')
        batch.drop_column('purged')
        batch.drop_column('purged_at')
