"""analytics daily rows: hours with facts per row, and week-hour splits (weekday × hour heat maps)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 03:30:00.000000

``analytics_daily`` is a cache of the hourly buckets: the table is made again with the new columns (``hours``,
``week_hour``, the latter in the unique key) and filled from the buckets with gasdesk's own roll-up code, as
the job does it, so the reports read the same figures before and after the upgrade. The fill writes the
latest shape of the table: a later migration that reshapes it moves the fill there.
"""
from alembic import op
import sqlalchemy as sa


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

DIMENSION_COLUMNS = ('channel', 'district', 'intent', 'ticket_type', 'detail', 'skill_group_id', 'team_id',
                     'agent_id')


def _columns(*, new: bool) -> list[sa.Column]:
    columns = [
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('split', sa.String(length=16), nullable=False),
        sa.Column('metric', sa.String(length=40), nullable=False),
        sa.Column('day', sa.DateTime(timezone=True), nullable=False),
        sa.Column('channel', sa.String(length=10), nullable=False),
        sa.Column('district', sa.String(length=40), nullable=False),
        sa.Column('intent', sa.String(length=40), nullable=False),
        sa.Column('ticket_type', sa.String(length=24), nullable=False),
        sa.Column('detail', sa.String(length=40), nullable=False),
        sa.Column('skill_group_id', sa.Integer(), nullable=False),
        sa.Column('team_id', sa.Integer(), nullable=False),
        sa.Column('agent_id', sa.Integer(), nullable=False),
    ]
    if new:
        columns.append(sa.Column('week_hour', sa.Integer(), nullable=False))
    columns += [sa.Column('count', sa.Integer(), nullable=False), sa.Column('total', sa.Float(), nullable=False)]
    if new:
        columns.append(sa.Column('hours', sa.Integer(), nullable=False))
    return columns


def _create(*, new: bool) -> None:
    key = ('split', 'metric', 'day', *DIMENSION_COLUMNS, *(('week_hour',) if new else ()))
    op.create_table('analytics_daily', *_columns(new=new),
                    sa.PrimaryKeyConstraint('id', name=op.f('pk_analytics_daily')),
                    sa.UniqueConstraint(*key, name='uq_analytics_daily_key'))
    with op.batch_alter_table('analytics_daily', schema=None) as batch_op:
        batch_op.create_index('ix_analytics_daily_day', ['day'], unique=False)


def upgrade() -> None:
    op.drop_table('analytics_daily')
    _create(new=True)
    _fill_daily()


def _fill_daily() -> None:
    from datetime import UTC

    from gasdesk.analytics.rollup import day_statements
    from gasdesk.analytics.service import slot_start

    conn = op.get_bind()
    buckets = sa.table('analytics_buckets', sa.column('hour', sa.DateTime(timezone=True)))
    hours = conn.scalars(sa.select(buckets.c.hour).distinct())
    days = {slot_start(h if h.tzinfo else h.replace(tzinfo=UTC), "day") for h in hours}
    for day in sorted(days):
        for statement in day_statements(day):
            conn.execute(statement)


def downgrade() -> None:
    # keep the rows 0016's table has (every split but the week-hour ones), without the new columns
    op.rename_table('analytics_daily', 'analytics_daily_0017')
    op.drop_index('ix_analytics_daily_day', table_name='analytics_daily_0017')
    _create(new=False)
    kept = ['split', 'metric', 'day', *DIMENSION_COLUMNS, 'count', 'total']
    newer = sa.table('analytics_daily_0017', *(sa.column(name) for name in (*kept, 'week_hour')))
    older = sa.table('analytics_daily', *(sa.column(name) for name in kept))
    op.get_bind().execute(older.insert().from_select(
        kept, sa.select(*(newer.c[name] for name in kept)).where(~newer.c.split.like('hour%'))))
    op.drop_table('analytics_daily_0017')
