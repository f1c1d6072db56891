"""outbound_email.held_by: the worker holding a row mid-send

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 23:00:00
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbound_email', schema=None) as batch_op:
        batch_op.add_column(sa.Column('held_by', sqlmodel.sql.sqltypes.AutoString(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outbound_email', schema=None) as batch_op:
        batch_op.drop_column('held_by')
