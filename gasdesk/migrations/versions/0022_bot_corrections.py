"""agents' corrections of the intent the bot understood (learning from production)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-04 12:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('intent_corrections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('predicted_intent', sa.String(length=30), nullable=True),
    sa.Column('predicted_confidence', sa.Float(), nullable=True),
    sa.Column('intent', sa.String(length=30), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reviewed_by', sa.Integer(), nullable=True),
    sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'],
                            name=op.f('fk_intent_corrections_conversation_id_conversations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_intent_corrections_created_by_users'),
                            ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_intent_corrections_message_id_messages'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['reviewed_by'], ['users.id'], name=op.f('fk_intent_corrections_reviewed_by_users'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_intent_corrections')),
    sa.UniqueConstraint('message_id', name=op.f('uq_intent_corrections_message_id'))
    )
    with op.batch_alter_table('intent_corrections', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_intent_corrections_conversation_id'), ['conversation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_intent_corrections_status'), ['status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('intent_corrections', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_intent_corrections_status'))
        batch_op.drop_index(batch_op.f('ix_intent_corrections_conversation_id'))
    op.drop_table('intent_corrections')
