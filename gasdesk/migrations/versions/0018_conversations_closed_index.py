"""conversations: index (state, closed_at) for the 质检 scan of the last week's closed conversations

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04 03:40:00.000000

Without it the scan read every closed conversation ever (the ``state`` index) each minute, on the web
process's one SQLite connection.
"""
from alembic import op


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.create_index('ix_conversations_state_closed', ['state', 'closed_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_index('ix_conversations_state_closed')
