"""Trust and faults: sender authentication, relay errors, bounded rendering, admin sessions

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 03:00:00
"""
import sqlalchemy as sa  # noqa: F401
import sqlmodel  # noqa: F401
from alembic import op  # noqa: F401

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # -- intake (gate, sender authentication, customer cap) --
    pass
    # -- outbox (relay errors, bounded rendering, undeliverable marks) --
    with op.batch_alter_table('outbound_email', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failure', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
    with op.batch_alter_table('email_template', schema=None) as batch_op:
        batch_op.add_column(sa.Column('broken_at', sa.DateTime(timezone=True), nullable=True))
    # -- sessions and recording --
    # A session version per admin: logout and a new password raise it, ending every session of that admin.
    # `locked_until` becomes `retry_after`: failed logins now make an address wait a little, they never lock it.
    with op.batch_alter_table('admin') as batch_op:
        batch_op.add_column(sa.Column('session_version', sa.Integer(), nullable=False, server_default='0'))
        batch_op.alter_column('locked_until', new_column_name='retry_after',
                              existing_type=sa.DateTime(timezone=True), existing_nullable=True)


def downgrade() -> None:
    # -- sessions and recording --
    with op.batch_alter_table('admin') as batch_op:
        batch_op.alter_column('retry_after', new_column_name='locked_until',
                              existing_type=sa.DateTime(timezone=True), existing_nullable=True)
        batch_op.drop_column('session_version')
    # -- outbox (relay errors, bounded rendering, undeliverable marks) --
    with op.batch_alter_table('email_template', schema=None) as batch_op:
        batch_op.drop_column('broken_at')
    with op.batch_alter_table('outbound_email', schema=None) as batch_op:
        batch_op.drop_column('failure')
    # -- intake (gate, sender authentication, customer cap) --
    pass
