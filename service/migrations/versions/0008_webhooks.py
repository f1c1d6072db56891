"""webhook_endpoint and webhook_delivery: signed webhooks, each delivery a row first and an RQ job second

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 10:00:00
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

import service.models

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'webhook_endpoint',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('url', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('description', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('events', sa.JSON(), nullable=False),
        sa.Column('salt', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('fingerprint', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('created_at', service.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', service.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_table(
        'webhook_delivery',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('endpoint_id', sa.Integer(), nullable=False),
        sa.Column('event', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('event_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('redelivery', sa.Integer(), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('due_at', service.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('held_by', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column('response_code', sa.Integer(), nullable=True),
        sa.Column('response_excerpt', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column('duration_ms', sa.Integer(), nullable=True),
        sa.Column('delivered_at', service.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('created_at', service.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', service.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['endpoint_id'], ['webhook_endpoint.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('endpoint_id', 'event_id', 'redelivery', name='uq_webhook_delivery_event'),
    )
    op.create_index(op.f('ix_webhook_delivery_endpoint_id'), 'webhook_delivery', ['endpoint_id'], unique=False)
    op.create_index('ix_webhook_delivery_status_due', 'webhook_delivery', ['status', 'due_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_webhook_delivery_status_due', table_name='webhook_delivery')
    op.drop_index(op.f('ix_webhook_delivery_endpoint_id'), table_name='webhook_delivery')
    op.drop_table('webhook_delivery')
    op.drop_table('webhook_endpoint')
