"""personal data at rest: encrypt free-text columns; KB misses redacted, encrypted, grouped by blind index

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-03 08:19:40.980598

Existing rows, and the files of existing uploads, are converted in place. This data step uses gasdesk's own encryption and redaction
(the same GASDESK_DATA_KEY as the app): a plaintext value left in an encrypted column could not be read.
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

# (table, column, redact first): free text that can quote a resident.
ENCRYPTED = [
    ('tickets', 'title', False),
    ('notifications', 'title', True),
    ('notifications', 'body', True),
    ('saved_views', 'query_string', False),
    ('jobs', 'last_error', True),
    ('webhook_deliveries', 'last_error', True),
]


def _convert(table: str, column: str, change) -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.text(f"SELECT id, {column} FROM {table} WHERE {column} IS NOT NULL")).all()
    for row_id, value in rows:
        new = change(value)
        if new != value:
            conn.execute(sa.text(f"UPDATE {table} SET {column} = :v WHERE id = :id"), {"v": new, "id": row_id})


def _seal_uploads() -> None:
    """Encrypt the files of existing attachments in place: <token>.<ext> becomes <token>.enc."""
    from pathlib import Path

    from gasdesk.security.crypto import encrypt_bytes, is_sealed

    conn = op.get_bind()
    for row_id, token, path in conn.execute(sa.text("SELECT id, token, path FROM attachments")).all():
        old = Path(path)
        if not old.is_file():
            continue
        data = old.read_bytes()
        if is_sealed(data):
            continue
        new = old.with_name(f"{token}.enc")
        new.write_bytes(encrypt_bytes(data, aad=token.encode()))
        conn.execute(sa.text("UPDATE attachments SET path = :p WHERE id = :id"), {"p": str(new), "id": row_id})
        if new != old:
            old.unlink()


def _unseal_uploads() -> None:
    from pathlib import Path

    from gasdesk.security.crypto import decrypt_bytes, is_sealed

    conn = op.get_bind()
    for row_id, token, path in conn.execute(sa.text("SELECT id, token, path FROM attachments")).all():
        old = Path(path)
        if not old.is_file() or not is_sealed(old.read_bytes()):
            continue
        new = old.with_name(f"{token}.bin")
        new.write_bytes(decrypt_bytes(old.read_bytes(), aad=token.encode()))
        conn.execute(sa.text("UPDATE attachments SET path = :p WHERE id = :id"), {"p": str(new), "id": row_id})
        old.unlink()


def upgrade() -> None:
    from gasdesk.kb.search import compact
    from gasdesk.security.crypto import blind_index, encrypt_text
    from gasdesk.security.pii import redact_pii

    if op.get_bind().dialect.name == 'sqlite':
        op.execute('PRAGMA secure_delete=ON')  # the replaced plaintext must not stay in free pages

    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.alter_column('title', existing_type=sa.VARCHAR(length=120), type_=sa.Text(),
                              existing_nullable=False)
        batch_op.alter_column('body', existing_type=sa.VARCHAR(length=500), type_=sa.Text(),
                              existing_nullable=False)
    with op.batch_alter_table('saved_views', schema=None) as batch_op:
        batch_op.alter_column('query_string', existing_type=sa.VARCHAR(length=1000), type_=sa.Text(),
                              existing_nullable=False)
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.alter_column('title', existing_type=sa.VARCHAR(length=120), type_=sa.Text(),
                              existing_nullable=False)

    for table, column, redact in ENCRYPTED:
        def change(value: str, redact: bool = redact) -> str:
            if value.startswith('v1:'):
                return value
            return encrypt_text(redact_pii(value) if redact else value)
        _convert(table, column, change)

    with op.batch_alter_table('kb_misses', schema=None) as batch_op:
        batch_op.add_column(sa.Column('normalized_index', sa.String(length=64), nullable=True))
        batch_op.alter_column('query', existing_type=sa.VARCHAR(length=300), type_=sa.Text(),
                              existing_nullable=False)
    conn = op.get_bind()
    for row_id, query in conn.execute(sa.text("SELECT id, query FROM kb_misses")).all():
        redacted = redact_pii(query)
        conn.execute(sa.text("UPDATE kb_misses SET query = :q, normalized_index = :k WHERE id = :id"), {
            "q": encrypt_text(redacted[:300]), "id": row_id,
            "k": blind_index(compact(redacted)[:300] or redacted[:300], kind="kb_miss")})
    with op.batch_alter_table('kb_misses', schema=None) as batch_op:
        batch_op.alter_column('normalized_index', existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_index(batch_op.f('ix_kb_misses_normalized'))
        batch_op.create_index(batch_op.f('ix_kb_misses_normalized_index'), ['normalized_index'], unique=False)
        batch_op.drop_column('normalized')
    _seal_uploads()


def downgrade() -> None:
    from gasdesk.kb.search import compact
    from gasdesk.security.crypto import decrypt_text

    def plain(value: str) -> str:
        return decrypt_text(value) if value.startswith('v1:') else value

    _unseal_uploads()

    with op.batch_alter_table('kb_misses', schema=None) as batch_op:
        batch_op.add_column(sa.Column('normalized', sa.VARCHAR(length=300), nullable=True))
    conn = op.get_bind()
    for row_id, query in conn.execute(sa.text("SELECT id, query FROM kb_misses")).all():
        text = plain(query)[:300]
        conn.execute(sa.text("UPDATE kb_misses SET query = :q, normalized = :n WHERE id = :id"),
                     {"q": text, "n": compact(text)[:300] or text, "id": row_id})
    with op.batch_alter_table('kb_misses', schema=None) as batch_op:
        batch_op.alter_column('normalized', existing_type=sa.VARCHAR(length=300), nullable=False)
        batch_op.drop_index(batch_op.f('ix_kb_misses_normalized_index'))
        batch_op.create_index(batch_op.f('ix_kb_misses_normalized'), ['normalized'], unique=False)
        batch_op.alter_column('query', existing_type=sa.Text(), type_=sa.VARCHAR(length=300),
                              existing_nullable=False)
        batch_op.drop_column('normalized_index')

    for table, column, _ in ENCRYPTED:
        _convert(table, column, plain)
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.alter_column('title', existing_type=sa.Text(), type_=sa.VARCHAR(length=120),
                              existing_nullable=False)
    with op.batch_alter_table('saved_views', schema=None) as batch_op:
        batch_op.alter_column('query_string', existing_type=sa.Text(), type_=sa.VARCHAR(length=1000),
                              existing_nullable=False)
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.alter_column('body', existing_type=sa.Text(), type_=sa.VARCHAR(length=500),
                              existing_nullable=False)
        batch_op.alter_column('title', existing_type=sa.Text(), type_=sa.VARCHAR(length=120),
                              existing_nullable=False)
