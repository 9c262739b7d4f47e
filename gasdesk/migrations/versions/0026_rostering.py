"""rostering (智能排班): shift templates (four seeded), rules, leave, preferences, monthly rosters and assignments

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-04 12:31:21.671427

Chained on 0023, the latest on main when this was written; the lead re-chains it at merge.
"""
from datetime import UTC, datetime

from alembic import op
import sqlalchemy as sa

# code, name, start (minutes after midnight), minutes, covers contacts, night, daily minimum, duty role, roles
_SHIFTS = [
    ("early", "早班", 8 * 60, 8 * 60, True, False, 0, None, ["agent", "supervisor"]),
    ("middle", "中班", 14 * 60, 8 * 60, True, False, 0, None, ["agent", "supervisor"]),
    ("night", "夜班", 22 * 60, 10 * 60, True, True, 0, None, ["agent", "supervisor"]),
    ("duty", "值班", 8 * 60, 24 * 60, False, False, 1, "shift_lead", ["supervisor"]),
]


revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('roster_shifts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=20), nullable=False),
    sa.Column('start_min', sa.Integer(), nullable=False),
    sa.Column('duration_min', sa.Integer(), nullable=False),
    sa.Column('covers_contacts', sa.Boolean(), nullable=False),
    sa.Column('night', sa.Boolean(), nullable=False),
    sa.Column('min_staff', sa.Integer(), nullable=False),
    sa.Column('duty_role', sa.String(length=30), nullable=True),
    sa.Column('skill_ids', sa.JSON(), nullable=False),
    sa.Column('roles', sa.JSON(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_roster_shifts')),
    sa.UniqueConstraint('code', name=op.f('uq_roster_shifts_code'))
    )
    op.create_table('roster_leave',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('start_day', sa.Date(), nullable=False),
    sa.Column('end_day', sa.Date(), nullable=False),
    sa.Column('note', sa.String(length=60), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_roster_leave_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_roster_leave'))
    )
    with op.batch_alter_table('roster_leave', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_roster_leave_user_id'), ['user_id'], unique=False)

    op.create_table('roster_preferences',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('shift_id', sa.Integer(), nullable=True),
    sa.Column('weekday', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['shift_id'], ['roster_shifts.id'], name=op.f('fk_roster_preferences_shift_id_roster_shifts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_roster_preferences_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_roster_preferences'))
    )
    with op.batch_alter_table('roster_preferences', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_roster_preferences_user_id'), ['user_id'], unique=False)

    op.create_table('roster_settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rules', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['updated_by_id'], ['users.id'], name=op.f('fk_roster_settings_updated_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_roster_settings'))
    )
    op.create_table('rosters',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('solve_status', sa.String(length=16), nullable=False),
    sa.Column('objective', sa.Float(), nullable=True),
    sa.Column('solve_seconds', sa.Float(), nullable=False),
    sa.Column('demand', sa.JSON(), nullable=False),
    sa.Column('unmet', sa.JSON(), nullable=False),
    sa.Column('unmet_total', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('published_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_rosters_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['published_by_id'], ['users.id'], name=op.f('fk_rosters_published_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rosters'))
    )
    with op.batch_alter_table('rosters', schema=None) as batch_op:
        batch_op.create_index('ix_rosters_month_status', ['month', 'status'], unique=False)

    op.create_table('roster_assignments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('roster_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('shift_id', sa.Integer(), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('duty_role', sa.String(length=30), nullable=True),
    sa.ForeignKeyConstraint(['roster_id'], ['rosters.id'], name=op.f('fk_roster_assignments_roster_id_rosters'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['shift_id'], ['roster_shifts.id'], name=op.f('fk_roster_assignments_shift_id_roster_shifts')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_roster_assignments_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_roster_assignments')),
    sa.UniqueConstraint('roster_id', 'user_id', 'day', name=op.f('uq_roster_assignments_roster_id_user_id_day'))
    )
    with op.batch_alter_table('roster_assignments', schema=None) as batch_op:
        batch_op.create_index('ix_roster_assignments_duty', ['duty_role', 'starts_at', 'ends_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_roster_assignments_roster_id'), ['roster_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_roster_assignments_user_id'), ['user_id'], unique=False)

    now = datetime.now(UTC)
    shifts = sa.table(
        "roster_shifts", sa.column("code", sa.String), sa.column("name", sa.String),
        sa.column("start_min", sa.Integer), sa.column("duration_min", sa.Integer),
        sa.column("covers_contacts", sa.Boolean), sa.column("night", sa.Boolean), sa.column("min_staff", sa.Integer),
        sa.column("duty_role", sa.String), sa.column("skill_ids", sa.JSON), sa.column("roles", sa.JSON),
        sa.column("active", sa.Boolean), sa.column("position", sa.Integer),
        sa.column("created_at", sa.DateTime(timezone=True)), sa.column("updated_at", sa.DateTime(timezone=True)))
    op.bulk_insert(shifts, [
        {"code": code, "name": name, "start_min": start, "duration_min": minutes, "covers_contacts": covers,
         "night": night, "min_staff": minimum, "duty_role": duty, "skill_ids": [], "roles": roles, "active": True,
         "position": (i + 1) * 10, "created_at": now, "updated_at": now}
        for i, (code, name, start, minutes, covers, night, minimum, duty, roles) in enumerate(_SHIFTS)
    ])


def downgrade() -> None:
    with op.batch_alter_table('roster_assignments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_roster_assignments_user_id'))
        batch_op.drop_index(batch_op.f('ix_roster_assignments_roster_id'))
        batch_op.drop_index('ix_roster_assignments_duty')

    op.drop_table('roster_assignments')
    with op.batch_alter_table('rosters', schema=None) as batch_op:
        batch_op.drop_index('ix_rosters_month_status')

    op.drop_table('rosters')
    op.drop_table('roster_settings')
    with op.batch_alter_table('roster_preferences', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_roster_preferences_user_id'))

    op.drop_table('roster_preferences')
    with op.batch_alter_table('roster_leave', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_roster_leave_user_id'))

    op.drop_table('roster_leave')
    op.drop_table('roster_shifts')
