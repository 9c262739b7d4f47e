"""holiday schedules (local overrides per service line) and callback requests

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04 04:30:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('hours_overrides',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('line', sa.String(length=20), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('hours', sa.String(length=20), nullable=False),
    sa.Column('note', sa.String(length=60), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('line', 'day'),
    )
    op.create_index(op.f('ix_hours_overrides_day'), 'hours_overrides', ['day'], unique=False)
    op.create_table('callback_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('phone', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.String(length=12), nullable=True),
    sa.Column('agent_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('handled_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['agent_id'], ['users.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(op.f('ix_callback_requests_conversation_id'), 'callback_requests', ['conversation_id'], unique=False)
    op.create_index(op.f('ix_callback_requests_status'), 'callback_requests', ['status'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_callback_requests_status'), table_name='callback_requests')
    op.drop_index(op.f('ix_callback_requests_conversation_id'), table_name='callback_requests')
    op.drop_table('callback_requests')
    op.drop_index(op.f('ix_hours_overrides_day'), table_name='hours_overrides')
    op.drop_table('hours_overrides')
