"""analytics: facts from the domain events, hourly buckets, the roll-up's watermark

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 22:10:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('analytics_facts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('dedupe_key', sa.String(length=120), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=True),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.Column('call_id', sa.Integer(), nullable=True),
    sa.Column('channel', sa.String(length=10), nullable=True),
    sa.Column('skill_group_id', sa.Integer(), nullable=True),
    sa.Column('team_id', sa.Integer(), nullable=True),
    sa.Column('agent_id', sa.Integer(), nullable=True),
    sa.Column('district', sa.String(length=40), nullable=True),
    sa.Column('intent', sa.String(length=40), nullable=True),
    sa.Column('ticket_type', sa.String(length=24), nullable=True),
    sa.Column('detail', sa.String(length=40), nullable=True),
    sa.Column('value', sa.Float(), nullable=False),
    sa.Column('data', sa.JSON(), nullable=True),
    sa.Column('inserted_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_analytics_facts')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_analytics_facts_dedupe_key'))
    )
    with op.batch_alter_table('analytics_facts', schema=None) as batch_op:
        batch_op.create_index('ix_analytics_facts_occurred_at', ['occurred_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_analytics_facts_inserted_at'), ['inserted_at'], unique=False)

    op.create_table('analytics_buckets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('metric', sa.String(length=40), nullable=False),
    sa.Column('hour', sa.DateTime(timezone=True), nullable=False),
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
    sa.PrimaryKeyConstraint('id', name=op.f('pk_analytics_buckets')),
    sa.UniqueConstraint('metric', 'hour', 'channel', 'district', 'intent', 'ticket_type', 'detail',
                        'skill_group_id', 'team_id', 'agent_id', name='uq_analytics_buckets_key')
    )
    with op.batch_alter_table('analytics_buckets', schema=None) as batch_op:
        batch_op.create_index('ix_analytics_buckets_metric_hour', ['metric', 'hour'], unique=False)

    op.create_table('analytics_rollup_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('last_fact_id', sa.Integer(), nullable=False),
    sa.Column('last_run_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_analytics_rollup_state'))
    )


def downgrade() -> None:
    op.drop_table('analytics_rollup_state')
    with op.batch_alter_table('analytics_buckets', schema=None) as batch_op:
        batch_op.drop_index('ix_analytics_buckets_metric_hour')
    op.drop_table('analytics_buckets')
    with op.batch_alter_table('analytics_facts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_analytics_facts_inserted_at'))
        batch_op.drop_index('ix_analytics_facts_occurred_at')
    op.drop_table('analytics_facts')
