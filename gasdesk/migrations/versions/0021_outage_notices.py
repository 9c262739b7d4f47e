"""outage notices with a life cycle (draft → published → updated → closed), areas down to the building, imported
customer lists, and broadcasts with one delivery row per customer

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04 04:00:00.000000

Existing outages become published notices (version 1) with one area row per community (or one for the whole
district).
"""
import json

from alembic import op
import sqlalchemy as sa


revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('planned', sa.Boolean(), nullable=False, server_default=sa.true()))
        batch_op.add_column(sa.Column('status', sa.String(length=10), nullable=False, server_default='published'))
        batch_op.add_column(sa.Column('title', sa.String(length=80), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('expected_restore_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('progress_note', sa.String(length=300), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('version', sa.Integer(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('content_hash', sa.String(length=64), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('published_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('created_by', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_outages_status'), ['status'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_outages_created_by_users'), 'users', ['created_by'], ['id'],
                                    ondelete='SET NULL')
    with op.batch_alter_table('outages', schema=None) as batch_op:
        for column in ('planned', 'status', 'title', 'progress_note', 'version', 'content_hash'):
            batch_op.alter_column(column, server_default=None)

    op.create_table('outage_areas',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('outage_id', sa.Integer(), nullable=False),
    sa.Column('district', sa.String(length=40), nullable=False),
    sa.Column('street', sa.String(length=60), nullable=False),
    sa.Column('community', sa.String(length=80), nullable=False),
    sa.Column('building', sa.String(length=20), nullable=False),
    sa.ForeignKeyConstraint(['outage_id'], ['outages.id'], name=op.f('fk_outage_areas_outage_id_outages'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outage_areas'))
    )
    with op.batch_alter_table('outage_areas', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outage_areas_outage_id'), ['outage_id'], unique=False)

    op.create_table('outage_customers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('outage_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_outage_customers_customer_id_customers'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['outage_id'], ['outages.id'], name=op.f('fk_outage_customers_outage_id_outages'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outage_customers')),
    sa.UniqueConstraint('outage_id', 'customer_id', name=op.f('uq_outage_customers_outage_id_customer_id'))
    )
    with op.batch_alter_table('outage_customers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outage_customers_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outage_customers_outage_id'), ['outage_id'], unique=False)

    op.create_table('broadcasts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subject', sa.String(length=40), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('purpose', sa.String(length=30), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('text', sa.String(length=600), nullable=False),
    sa.Column('queued_count', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_broadcasts')),
    sa.UniqueConstraint('subject', 'content_hash', name=op.f('uq_broadcasts_subject_content_hash'))
    )
    with op.batch_alter_table('broadcasts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_broadcasts_subject'), ['subject'], unique=False)

    op.create_table('broadcast_deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('broadcast_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('channel', sa.String(length=10), nullable=True),
    sa.Column('outbound_id', sa.Integer(), nullable=True),
    sa.Column('message_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('handed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['broadcast_id'], ['broadcasts.id'],
                            name=op.f('fk_broadcast_deliveries_broadcast_id_broadcasts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'],
                            name=op.f('fk_broadcast_deliveries_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_broadcast_deliveries')),
    sa.UniqueConstraint('broadcast_id', 'customer_id', name=op.f('uq_broadcast_deliveries_broadcast_id_customer_id'))
    )
    with op.batch_alter_table('broadcast_deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_broadcast_deliveries_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_broadcast_deliveries_outbound_id'), ['outbound_id'], unique=False)
        batch_op.create_index('ix_broadcast_deliveries_status_id', ['status', 'id'], unique=False)

    # Existing outages: areas from their district and communities; their status from ``published``.
    bind = op.get_bind()
    outages = sa.table('outages', sa.column('id', sa.Integer), sa.column('district', sa.String),
                       sa.column('communities', sa.JSON), sa.column('published', sa.Boolean),
                       sa.column('status', sa.String), sa.column('created_at', sa.DateTime(timezone=True)),
                       sa.column('published_at', sa.DateTime(timezone=True)))
    areas = sa.table('outage_areas', sa.column('outage_id', sa.Integer), sa.column('district', sa.String),
                     sa.column('street', sa.String), sa.column('community', sa.String),
                     sa.column('building', sa.String))
    rows = []
    for outage_id, district, communities in bind.execute(sa.select(outages.c.id, outages.c.district,
                                                                   outages.c.communities)):
        if isinstance(communities, str):
            communities = json.loads(communities)
        for community in communities or [""]:
            rows.append({"outage_id": outage_id, "district": district, "street": "", "community": community,
                         "building": ""})
    if rows:
        bind.execute(areas.insert(), rows)
    bind.execute(outages.update().where(outages.c.published.is_(False)).values(status='closed'))
    bind.execute(outages.update().values(published_at=outages.c.created_at))


def downgrade() -> None:
    with op.batch_alter_table('broadcast_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_broadcast_deliveries_status_id')
        batch_op.drop_index(batch_op.f('ix_broadcast_deliveries_outbound_id'))
        batch_op.drop_index(batch_op.f('ix_broadcast_deliveries_customer_id'))
    op.drop_table('broadcast_deliveries')
    with op.batch_alter_table('broadcasts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_broadcasts_subject'))
    op.drop_table('broadcasts')
    with op.batch_alter_table('outage_customers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outage_customers_outage_id'))
        batch_op.drop_index(batch_op.f('ix_outage_customers_customer_id'))
    op.drop_table('outage_customers')
    with op.batch_alter_table('outage_areas', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outage_areas_outage_id'))
    op.drop_table('outage_areas')
    with op.batch_alter_table('outages', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_outages_created_by_users'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_outages_status'))
        for column in ('created_by', 'closed_at', 'published_at', 'content_hash', 'version', 'progress_note',
                       'expected_restore_at', 'title', 'status', 'planned'):
            batch_op.drop_column(column)
