"""knowledge base (articles, versions, misses, feedback)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 09:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('kb_articles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('questions', sa.JSON(), nullable=False),
    sa.Column('answer', sa.Text(), nullable=False),
    sa.Column('category', sa.String(length=40), nullable=False),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('channels', sa.JSON(), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=True),
    sa.Column('valid_to', sa.Date(), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('hits', sa.Integer(), nullable=False),
    sa.Column('helpful', sa.Integer(), nullable=False),
    sa.Column('not_helpful', sa.Integer(), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kb_articles')),
    sa.UniqueConstraint('title', name=op.f('uq_kb_articles_title'))
    )
    with op.batch_alter_table('kb_articles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_kb_articles_category'), ['category'], unique=False)
        batch_op.create_index(batch_op.f('ix_kb_articles_status'), ['status'], unique=False)

    op.create_table('kb_article_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('article_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('questions', sa.JSON(), nullable=False),
    sa.Column('answer', sa.Text(), nullable=False),
    sa.Column('category', sa.String(length=40), nullable=False),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('channels', sa.JSON(), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=True),
    sa.Column('valid_to', sa.Date(), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('note', sa.String(length=200), nullable=False),
    sa.Column('editor_id', sa.Integer(), nullable=True),
    sa.Column('editor_name', sa.String(length=60), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['article_id'], ['kb_articles.id'], name=op.f('fk_kb_article_versions_article_id_kb_articles'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['editor_id'], ['users.id'], name=op.f('fk_kb_article_versions_editor_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kb_article_versions')),
    sa.UniqueConstraint('article_id', 'version', name=op.f('uq_kb_article_versions_article_id_version'))
    )
    with op.batch_alter_table('kb_article_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_kb_article_versions_article_id'), ['article_id'], unique=False)

    op.create_table('kb_misses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('query', sa.String(length=300), nullable=False),
    sa.Column('normalized', sa.String(length=300), nullable=False),
    sa.Column('channel', sa.String(length=10), nullable=True),
    sa.Column('intent', sa.String(length=40), nullable=True),
    sa.Column('best_article_id', sa.Integer(), nullable=True),
    sa.Column('best_score', sa.Float(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['best_article_id'], ['kb_articles.id'], name=op.f('fk_kb_misses_best_article_id_kb_articles'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kb_misses'))
    )
    with op.batch_alter_table('kb_misses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_kb_misses_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_kb_misses_normalized'), ['normalized'], unique=False)

    op.create_table('kb_feedback',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('article_id', sa.Integer(), nullable=False),
    sa.Column('helpful', sa.Boolean(), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['article_id'], ['kb_articles.id'], name=op.f('fk_kb_feedback_article_id_kb_articles'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kb_feedback'))
    )
    with op.batch_alter_table('kb_feedback', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_kb_feedback_article_id'), ['article_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_kb_feedback_at'), ['at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('kb_feedback', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_kb_feedback_at'))
        batch_op.drop_index(batch_op.f('ix_kb_feedback_article_id'))
    op.drop_table('kb_feedback')
    with op.batch_alter_table('kb_misses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_kb_misses_normalized'))
        batch_op.drop_index(batch_op.f('ix_kb_misses_at'))
    op.drop_table('kb_misses')
    with op.batch_alter_table('kb_article_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_kb_article_versions_article_id'))
    op.drop_table('kb_article_versions')
    with op.batch_alter_table('kb_articles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_kb_articles_status'))
        batch_op.drop_index(batch_op.f('ix_kb_articles_category'))
    op.drop_table('kb_articles')
