"""jobs: per-job timeouts, leases of running jobs (stale-lease recovery), failed/dead statuses

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-09 03:00:00.000000

Before this revision a job whose attempts were used up was 'failed' and a job waiting for its retry was
'pending'; now the first is 'dead' (the dead letters) and the second 'failed'.
"""
from alembic import op
import sqlalchemy as sa


revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('timeout_s', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('lease_expires_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_jobs_lease', ['status', 'lease_expires_at'], unique=False)
    op.execute("UPDATE jobs SET status = 'dead' WHERE status = 'failed'")
    op.execute("UPDATE jobs SET status = 'failed' WHERE status = 'pending' AND attempts > 0 AND last_error IS NOT NULL")


def downgrade() -> None:
    op.execute("UPDATE jobs SET status = 'pending' WHERE status = 'failed'")
    op.execute("UPDATE jobs SET status = 'failed' WHERE status IN ('dead', 'discarded')")
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_jobs_lease')
        batch_op.drop_column('lease_expires_at')
        batch_op.drop_column('timeout_s')
