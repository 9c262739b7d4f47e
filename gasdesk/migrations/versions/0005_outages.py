"""announced outages (计划停气/停暖)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 20:20:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('outages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('district', sa.String(length=40), nullable=False),
    sa.Column('communities', sa.JSON(), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('published', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outages'))
    )
    with op.batch_alter_table('outages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outages_district'), ['district'], unique=False)
        batch_op.create_index(batch_op.f('ix_outages_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_outages_starts_at'), ['starts_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('outages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outages_starts_at'))
        batch_op.drop_index(batch_op.f('ix_outages_kind'))
        batch_op.drop_index(batch_op.f('ix_outages_district'))
    op.drop_table('outages')
