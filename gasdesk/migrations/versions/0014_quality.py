"""quality inspection: scoring sheets and scores

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-10 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('quality_sheets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('team_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('body', sa.JSON(), nullable=False),
    sa.Column('note', sa.String(length=200), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_quality_sheets_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_quality_sheets_team_id_teams'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quality_sheets')),
    sa.UniqueConstraint('version', name=op.f('uq_quality_sheets_version'))
    )
    with op.batch_alter_table('quality_sheets', schema=None) as batch_op:
        batch_op.create_index('ix_quality_sheets_team_status', ['team_id', 'status'], unique=False)

    op.create_table('quality_scores',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.Integer(), nullable=True),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=True),
    sa.Column('team_id', sa.Integer(), nullable=True),
    sa.Column('sheet_id', sa.Integer(), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('scored_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('auto_score', sa.Float(), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('results', sa.JSON(), nullable=False),
    sa.Column('sample_reason', sa.String(length=12), nullable=True),
    sa.Column('review_status', sa.String(length=10), nullable=False),
    sa.Column('reviewed_by', sa.Integer(), nullable=True),
    sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('adjusted', sa.Boolean(), nullable=False),
    sa.Column('adjust_reason', sa.Text(), nullable=True),
    sa.Column('appeal_status', sa.String(length=10), nullable=False),
    sa.Column('appeal_reason', sa.Text(), nullable=True),
    sa.Column('appealed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('appeal_note', sa.Text(), nullable=True),
    sa.Column('appeal_resolved_by', sa.Integer(), nullable=True),
    sa.Column('appeal_resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['agent_id'], ['users.id'], name=op.f('fk_quality_scores_agent_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['appeal_resolved_by'], ['users.id'], name=op.f('fk_quality_scores_appeal_resolved_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['call_id'], ['calls.id'], name=op.f('fk_quality_scores_call_id_calls'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_quality_scores_conversation_id_conversations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['reviewed_by'], ['users.id'], name=op.f('fk_quality_scores_reviewed_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['sheet_id'], ['quality_sheets.id'], name=op.f('fk_quality_scores_sheet_id_quality_sheets'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_quality_scores_team_id_teams'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quality_scores')),
    sa.UniqueConstraint('conversation_id', name=op.f('uq_quality_scores_conversation_id'))
    )
    with op.batch_alter_table('quality_scores', schema=None) as batch_op:
        batch_op.create_index('ix_quality_scores_agent_closed', ['agent_id', 'closed_at'], unique=False)
        batch_op.create_index('ix_quality_scores_review', ['review_status', 'closed_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_quality_scores_appeal_status'), ['appeal_status'], unique=False)
        batch_op.create_index(batch_op.f('ix_quality_scores_team_id'), ['team_id'], unique=False)


def downgrade() -> None:
    op.drop_table('quality_scores')
    op.drop_table('quality_sheets')
