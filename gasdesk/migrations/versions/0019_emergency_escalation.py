"""emergency escalation: policies per risk level, duty list, staff contacts, events and their notifications

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04 03:47:59.090265
"""
from alembic import op
import sqlalchemy as sa


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('duty_assignments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('duty_role', sa.String(length=30), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_duty_assignments_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_duty_assignments'))
    )
    with op.batch_alter_table('duty_assignments', schema=None) as batch_op:
        batch_op.create_index('ix_duty_assignments_role_time', ['duty_role', 'starts_at', 'ends_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_duty_assignments_user_id'), ['user_id'], unique=False)

    op.create_table('emergency_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.Column('outage_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('policy_version', sa.Integer(), nullable=False),
    sa.Column('steps', sa.JSON(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('current_step', sa.Integer(), nullable=False),
    sa.Column('next_due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('exhausted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('opened_by_id', sa.Integer(), nullable=True),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_by_id', sa.Integer(), nullable=True),
    sa.Column('acknowledged_via', sa.String(length=20), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_by_id', sa.Integer(), nullable=True),
    sa.Column('summary', sa.Text(), nullable=True),
    sa.Column('cancel_reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['acknowledged_by_id'], ['users.id'], name=op.f('fk_emergency_events_acknowledged_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['closed_by_id'], ['users.id'], name=op.f('fk_emergency_events_closed_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['opened_by_id'], ['users.id'], name=op.f('fk_emergency_events_opened_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_emergency_events'))
    )
    with op.batch_alter_table('emergency_events', schema=None) as batch_op:
        batch_op.create_index('ix_emergency_events_due', ['status', 'next_due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_emergency_events_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_emergency_events_ticket_id'), ['ticket_id'], unique=False)

    op.create_table('emergency_policies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('steps', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_emergency_policies_created_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_emergency_policies')),
    sa.UniqueConstraint('level', 'version', name=op.f('uq_emergency_policies_level_version'))
    )
    op.create_table('staff_contacts',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('mobile', sa.Text(), nullable=True),
    sa.Column('mobile_index', sa.String(length=64), nullable=True),
    sa.Column('wechat_openid', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_staff_contacts_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_staff_contacts'))
    )
    op.create_table('emergency_notifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('duty_role', sa.String(length=30), nullable=True),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=40), nullable=True),
    sa.Column('notification_id', sa.Integer(), nullable=True),
    sa.Column('outbound_id', sa.Integer(), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['event_id'], ['emergency_events.id'], name=op.f('fk_emergency_notifications_event_id_emergency_events'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_emergency_notifications_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_emergency_notifications')),
    sa.UniqueConstraint('event_id', 'seq', 'user_id', 'channel', name=op.f('uq_emergency_notifications_event_id_seq_user_id_channel'))
    )
    with op.batch_alter_table('emergency_notifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_emergency_notifications_event_id'), ['event_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('emergency_notifications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_emergency_notifications_event_id'))

    op.drop_table('emergency_notifications')
    op.drop_table('staff_contacts')
    op.drop_table('emergency_policies')
    with op.batch_alter_table('emergency_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_emergency_events_ticket_id'))
        batch_op.drop_index(batch_op.f('ix_emergency_events_status'))
        batch_op.drop_index('ix_emergency_events_due')

    op.drop_table('emergency_events')
    with op.batch_alter_table('duty_assignments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_duty_assignments_user_id'))
        batch_op.drop_index('ix_duty_assignments_role_time')

    op.drop_table('duty_assignments')
