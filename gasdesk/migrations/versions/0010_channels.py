"""channels: contact identities, outbound messages, notice templates

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 17:31:07.601732
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('channel_state',
    sa.Column('key', sa.String(length=60), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_channel_state'))
    )
    op.create_table('inbound_receipts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbound_receipts')),
    sa.UniqueConstraint('channel', 'key', name=op.f('uq_inbound_receipts_channel_key'))
    )
    with op.batch_alter_table('inbound_receipts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inbound_receipts_created_at'), ['created_at'], unique=False)

    op.create_table('notice_templates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('purpose', sa.String(length=30), nullable=False),
    sa.Column('provider_template_id', sa.String(length=80), nullable=False),
    sa.Column('fields', sa.JSON(), nullable=False),
    sa.Column('body', sa.String(length=500), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notice_templates')),
    sa.UniqueConstraint('channel', 'purpose', name=op.f('uq_notice_templates_channel_purpose'))
    )
    op.create_table('contact_identities',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('value_index', sa.String(length=64), nullable=False),
    sa.Column('unionid_index', sa.String(length=64), nullable=True),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('bound_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('bound_how', sa.String(length=20), nullable=True),
    sa.Column('subscribed', sa.Boolean(), nullable=False),
    sa.Column('last_inbound_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('opted_out_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_contact_identities_customer_id_customers'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contact_identities')),
    sa.UniqueConstraint('kind', 'value_index', name=op.f('uq_contact_identities_kind_value_index'))
    )
    with op.batch_alter_table('contact_identities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contact_identities_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_contact_identities_unionid_index'), ['unionid_index'], unique=False)

    op.create_table('outbound_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('purpose', sa.String(length=30), nullable=False),
    sa.Column('method', sa.String(length=10), nullable=False),
    sa.Column('recipient', sa.Text(), nullable=False),
    sa.Column('recipient_index', sa.String(length=64), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('conversation_id', sa.Integer(), nullable=True),
    sa.Column('message_id', sa.Integer(), nullable=True),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.Column('appointment_id', sa.Integer(), nullable=True),
    sa.Column('followup_id', sa.Integer(), nullable=True),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('template_key', sa.String(length=40), nullable=True),
    sa.Column('params', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('reason', sa.String(length=40), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('provider_id', sa.String(length=80), nullable=True),
    sa.Column('dedupe_key', sa.String(length=120), nullable=True),
    sa.Column('emergency', sa.Boolean(), nullable=False),
    sa.Column('fallback_of_id', sa.Integer(), nullable=True),
    sa.Column('not_before', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['contact_id'], ['contact_identities.id'], name=op.f('fk_outbound_messages_contact_id_contact_identities'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_outbound_messages_conversation_id_conversations'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_outbound_messages_customer_id_customers'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbound_messages')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_outbound_messages_dedupe_key'))
    )
    with op.batch_alter_table('outbound_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbound_messages_appointment_id'), ['appointment_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbound_messages_conversation_id'), ['conversation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbound_messages_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbound_messages_provider_id'), ['provider_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbound_messages_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbound_messages_ticket_id'), ['ticket_id'], unique=False)
        batch_op.create_index('ix_outbound_recipient_day', ['recipient_index', 'created_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('outbound_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_outbound_recipient_day')
        batch_op.drop_index(batch_op.f('ix_outbound_messages_ticket_id'))
        batch_op.drop_index(batch_op.f('ix_outbound_messages_status'))
        batch_op.drop_index(batch_op.f('ix_outbound_messages_provider_id'))
        batch_op.drop_index(batch_op.f('ix_outbound_messages_customer_id'))
        batch_op.drop_index(batch_op.f('ix_outbound_messages_conversation_id'))
        batch_op.drop_index(batch_op.f('ix_outbound_messages_appointment_id'))

    op.drop_table('outbound_messages')
    with op.batch_alter_table('contact_identities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contact_identities_unionid_index'))
        batch_op.drop_index(batch_op.f('ix_contact_identities_customer_id'))

    op.drop_table('contact_identities')
    op.drop_table('notice_templates')
    with op.batch_alter_table('inbound_receipts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbound_receipts_created_at'))

    op.drop_table('inbound_receipts')
    op.drop_table('channel_state')
