"""rep.language and rep.calendar_key: the language reps are written in, and their revocable calendar feed

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 09:20:00
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('rep', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column('calendar_key', sqlmodel.sql.sqltypes.AutoString(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('rep', schema=None) as batch_op:
        batch_op.drop_column('calendar_key')
        batch_op.drop_column('language')
