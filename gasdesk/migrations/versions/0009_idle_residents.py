"""idle residents: when the resident's last socket closed, and when the console marked 居民已离开

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08 09:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('conversations', sa.Column('resident_gone_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('conversations', sa.Column('resident_left_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_column('resident_left_at')
        batch_op.drop_column('resident_gone_at')
