"""analytics daily roll-up: the hourly buckets summed per local day (by every dimension, none, each one)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 23:50:00.000000

The table is filled from the existing buckets by 0017, which reshapes it: the fill runs gasdesk's current
roll-up code, which writes the latest shape of the table.
"""
from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('analytics_daily',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('split', sa.String(length=16), nullable=False),
    sa.Column('metric', sa.String(length=40), nullable=False),
    sa.Column('day', sa.DateTime(timezone=True), nullable=False),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('district', sa.String(length=40), nullable=False),
    sa.Column('intent', sa.String(length=40), nullable=False),
    sa.Column('ticket_type', sa.String(length=24), nullable=False),
    sa.Column('detail', sa.String(length=40), nullable=False),
    sa.Column('skill_group_id', sa.Integer(), nullable=False),
    sa.Column('team_id', sa.Integer(), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('total', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_analytics_daily')),
    sa.UniqueConstraint('split', 'metric', 'day', 'channel', 'district', 'intent', 'ticket_type', 'detail',
                        'skill_group_id', 'team_id', 'agent_id', name='uq_analytics_daily_key')
    )
    with op.batch_alter_table('analytics_daily', schema=None) as batch_op:
        batch_op.create_index('ix_analytics_daily_day', ['day'], unique=False)
    with op.batch_alter_table('analytics_buckets', schema=None) as batch_op:
        batch_op.create_index('ix_analytics_buckets_hour', ['hour'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('analytics_buckets', schema=None) as batch_op:
        batch_op.drop_index('ix_analytics_buckets_hour')
    with op.batch_alter_table('analytics_daily', schema=None) as batch_op:
        batch_op.drop_index('ix_analytics_daily_day')
    op.drop_table('analytics_daily')
