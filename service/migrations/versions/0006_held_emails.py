"""outcome.held_reason and confirmed_at: customer emails that wait for the rep's confirmation

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 03:30:00
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

import service.models

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outcome', schema=None) as batch_op:
        batch_op.add_column(sa.Column('held_reason', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column('confirmed_at', service.models.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outcome', schema=None) as batch_op:
        batch_op.drop_column('confirmed_at')
        batch_op.drop_column('held_reason')
