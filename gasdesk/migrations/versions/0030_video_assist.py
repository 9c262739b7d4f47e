"""video assist: video_sessions (one row per invitation: consent flags, times, snapshot and recording counts)

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-04 14:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


revision = '0030'
down_revision = '0029'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('video_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=True),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('recording_requested', sa.Boolean(), nullable=False),
    sa.Column('consent_video', sa.Boolean(), nullable=False),
    sa.Column('consent_recording', sa.Boolean(), nullable=False),
    sa.Column('snapshot_count', sa.Integer(), nullable=False),
    sa.Column('recording_count', sa.Integer(), nullable=False),
    sa.Column('invited_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_by', sa.String(length=10), nullable=True),
    sa.Column('end_reason', sa.String(length=20), nullable=True),
    sa.ForeignKeyConstraint(['agent_id'], ['users.id'], name=op.f('fk_video_sessions_agent_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_video_sessions_conversation_id_conversations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_video_sessions'))
    )
    with op.batch_alter_table('video_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_video_sessions_agent_id'), ['agent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_video_sessions_conversation_id'), ['conversation_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('video_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_video_sessions_conversation_id'))
        batch_op.drop_index(batch_op.f('ix_video_sessions_agent_id'))

    op.drop_table('video_sessions')
