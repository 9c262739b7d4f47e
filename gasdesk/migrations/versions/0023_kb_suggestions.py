"""suggested knowledge articles: what admins did with grouped unanswered questions and "not helpful" votes

Revision ID: 0023
Revises: 0021
Create Date: 2026-12-08 03:00:00.000000

Chained on 0021: 0022 (bot corrections) was not on main when this was written; the lead re-chains it.
"""
from alembic import op
import sqlalchemy as sa


revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('kb_misses', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resolution', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('draft_article_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_kb_misses_resolution'), ['resolution'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_kb_misses_draft_article_id_kb_articles'), 'kb_articles',
                                    ['draft_article_id'], ['id'], ondelete='SET NULL')
    with op.batch_alter_table('kb_feedback', schema=None) as batch_op:
        batch_op.add_column(sa.Column('handled_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('kb_feedback', schema=None) as batch_op:
        batch_op.drop_column('handled_at')
    with op.batch_alter_table('kb_misses', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_kb_misses_draft_article_id_kb_articles'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_kb_misses_resolution'))
        batch_op.drop_column('draft_article_id')
        batch_op.drop_column('resolved_at')
        batch_op.drop_column('resolution')
