"""wall screen: thresholds

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-10 10:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('wall_thresholds',
    sa.Column('metric', sa.String(length=30), nullable=False),
    sa.Column('amber', sa.Integer(), nullable=True),
    sa.Column('red', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('metric', name=op.f('pk_wall_thresholds'))
    )


def downgrade() -> None:
    op.drop_table('wall_thresholds')
