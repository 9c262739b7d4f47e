"""smart tags and data links: tag rules, tags on customers / conversations / contact identities, address links

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-04 12:48:45.073923

Chained on 0023, the latest on main when this was written (0024–0026 are on other branches); the lead re-chains it.
"""
from alembic import op
import sqlalchemy as sa


revision = '0028'
down_revision = '0027'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('tag_rules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tag', sa.String(length=20), nullable=False),
    sa.Column('colour', sa.String(length=7), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('target', sa.String(length=12), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_tag_rules_created_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tag_rules'))
    )
    with op.batch_alter_table('tag_rules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tag_rules_enabled'), ['enabled'], unique=False)

    op.create_table('address_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('address_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('value_index', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('source', sa.String(length=40), nullable=False),
    sa.Column('decided_by', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['address_id'], ['addresses.id'], name=op.f('fk_address_links_address_id_addresses'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['decided_by'], ['users.id'], name=op.f('fk_address_links_decided_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_address_links')),
    sa.UniqueConstraint('address_id', 'kind', 'value_index', name=op.f('uq_address_links_address_id_kind_value_index'))
    )
    with op.batch_alter_table('address_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_address_links_address_id'), ['address_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_address_links_value_index'), ['value_index'], unique=False)

    op.create_table('tag_assignments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tag', sa.String(length=20), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('conversation_id', sa.Integer(), nullable=True),
    sa.Column('visitor_id', sa.String(length=64), nullable=True),
    sa.Column('source', sa.String(length=10), nullable=False),
    sa.Column('rule_id', sa.Integer(), nullable=True),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('removed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('removed_by', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_tag_assignments_conversation_id_conversations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_tag_assignments_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_tag_assignments_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['removed_by'], ['users.id'], name=op.f('fk_tag_assignments_removed_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['rule_id'], ['tag_rules.id'], name=op.f('fk_tag_assignments_rule_id_tag_rules'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tag_assignments'))
    )
    with op.batch_alter_table('tag_assignments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tag_assignments_conversation_id'), ['conversation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_tag_assignments_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_tag_assignments_visitor_id'), ['visitor_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('tag_assignments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tag_assignments_visitor_id'))
        batch_op.drop_index(batch_op.f('ix_tag_assignments_customer_id'))
        batch_op.drop_index(batch_op.f('ix_tag_assignments_conversation_id'))

    op.drop_table('tag_assignments')
    with op.batch_alter_table('address_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_address_links_value_index'))
        batch_op.drop_index(batch_op.f('ix_address_links_address_id'))

    op.drop_table('address_links')
    with op.batch_alter_table('tag_rules', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tag_rules_enabled'))

    op.drop_table('tag_rules')
