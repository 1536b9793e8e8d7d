"""Tenants, API keys and idempotency keys.

Every resource row gets ``tenant_id`` (existing rows: ``default``, the tenant MEOW_AUTH=off acts
as); models get ``shared`` (existing models become shared: before tenants every caller could use
them) and a per-tenant unique name; jobs get ``inverter_api_key`` (a caller's own key, wiped at
claim). New tables: ``api_keys`` (HMAC of each key, scopes, revocation) and ``idempotency_keys``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 21:20:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RESOURCE_TABLES = ("models", "jobs", "adapters")


def upgrade() -> None:
    # The server default fills existing rows; it is dropped again so the ORM's default is the one rule.
    for table in RESOURCE_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('tenant_id', sa.String(length=64), nullable=False,
                                       server_default='default'))
    for table in RESOURCE_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.alter_column('tenant_id', server_default=None)
            batch.create_index(op.f(f'ix_{table}_tenant_id'), ['tenant_id'], unique=False)
    with op.batch_alter_table('models') as batch:
        batch.add_column(sa.Column('shared', sa.Boolean(), nullable=False, server_default=sa.true()))
    with op.batch_alter_table('models') as batch:
        batch.alter_column('shared', server_default=None)
        batch.drop_constraint('uq_models_name', type_='unique')
        batch.create_unique_constraint('uq_models_tenant_id_name', ['tenant_id', 'name'])
    with op.batch_alter_table('jobs') as batch:
        batch.add_column(sa.Column('inverter_api_key', sa.Text(), nullable=True))

    op.create_table('api_keys',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=24), nullable=False),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_api_keys_key_hash'))
    )
    op.create_index(op.f('ix_api_keys_tenant_id'), 'api_keys', ['tenant_id'], unique=False)
    op.create_table('idempotency_keys',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('response', sa.JSON(), nullable=True),
    sa.Column('headers', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("state IN ('in_flight', 'completed')", name=op.f('ck_idempotency_keys_state')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_idempotency_keys')),
    sa.UniqueConstraint('tenant_id', 'key', name='uq_idempotency_keys_tenant_id_key')
    )
    op.create_index(op.f('ix_idempotency_keys_expires_at'), 'idempotency_keys', ['expires_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_idempotency_keys_expires_at'), table_name='idempotency_keys')
    op.drop_table('idempotency_keys')
    op.drop_index(op.f('ix_api_keys_tenant_id'), table_name='api_keys')
    op.drop_table('api_keys')
    with op.batch_alter_table('jobs') as batch:
        batch.drop_column('inverter_api_key')
    with op.batch_alter_table('models') as batch:
        batch.drop_constraint('uq_models_tenant_id_name', type_='unique')
        batch.create_unique_constraint('uq_models_name', ['name'])
        batch.drop_column('shared')
    for table in RESOURCE_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_index(op.f(f'ix_{table}_tenant_id'))
            batch.drop_column('tenant_id')
