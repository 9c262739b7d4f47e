"""key rotation may re-encrypt audit snapshots: the append-only trigger lets an UPDATE change ``changes`` alone
while the rotating transaction holds a row in audit_rekey_grants

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-04 13:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None

_OTHER_COLUMNS = ("id", "at", "actor_id", "actor_name", "action", "entity_type", "entity_id", "source")

_PG_GUARD = (
    "CREATE OR REPLACE FUNCTION audit_entries_append_only() RETURNS trigger AS $$ "
    "BEGIN "
    "IF TG_OP = 'UPDATE' AND EXISTS (SELECT 1 FROM audit_rekey_grants) "
    "AND (to_jsonb(NEW) - 'changes') = (to_jsonb(OLD) - 'changes') THEN RETURN NEW; END IF; "
    "RAISE EXCEPTION 'audit_entries is append-only'; END; $$ LANGUAGE plpgsql"
)
_PG_GUARD_BEFORE = (
    "CREATE OR REPLACE FUNCTION audit_entries_append_only() RETURNS trigger AS $$ "
    "BEGIN RAISE EXCEPTION 'audit_entries is append-only'; END; $$ LANGUAGE plpgsql"
)
_SQLITE_UNCHANGED = " AND ".join(f"NEW.{c} IS OLD.{c}" for c in _OTHER_COLUMNS)


def upgrade() -> None:
    op.create_table('audit_rekey_grants', sa.Column('id', sa.Integer(), nullable=False),
                    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_rekey_grants')))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_GUARD)
        return
    op.execute("DROP TRIGGER audit_entries_no_update")
    op.execute("CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries "
               f"WHEN NOT (EXISTS (SELECT 1 FROM audit_rekey_grants) AND {_SQLITE_UNCHANGED}) "
               "BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only'); END;")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_GUARD_BEFORE)
    else:
        op.execute("DROP TRIGGER audit_entries_no_update")
        op.execute("CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries "
                   "BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only'); END;")
    op.drop_table('audit_rekey_grants')
