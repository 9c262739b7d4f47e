"""training: materials, question banks, exams and attempts, sparring scenarios and sessions

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-04 14:31:36.442512
"""
from alembic import op
import sqlalchemy as sa


revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('training_scenarios',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=30), nullable=False),
    sa.Column('title', sa.String(length=60), nullable=False),
    sa.Column('script', sa.JSON(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_training_scenarios')),
    sa.UniqueConstraint('code', name=op.f('uq_training_scenarios_code'))
    )
    op.create_table('training_banks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('description', sa.String(length=200), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_training_banks_created_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_training_banks')),
    sa.UniqueConstraint('name', name=op.f('uq_training_banks_name'))
    )
    op.create_table('training_sparring',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scenario_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('steps_done', sa.JSON(), nullable=False),
    sa.Column('said', sa.JSON(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('step_score', sa.Float(), nullable=True),
    sa.Column('quality_score', sa.Float(), nullable=True),
    sa.Column('score', sa.Float(), nullable=True),
    sa.Column('feedback', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['scenario_id'], ['training_scenarios.id'], name=op.f('fk_training_sparring_scenario_id_training_scenarios'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_training_sparring_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_training_sparring'))
    )
    with op.batch_alter_table('training_sparring', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_training_sparring_scenario_id'), ['scenario_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_training_sparring_user_id'), ['user_id'], unique=False)

    op.create_table('training_exams',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('bank_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=100), nullable=False),
    sa.Column('question_count', sa.Integer(), nullable=False),
    sa.Column('time_limit_min', sa.Integer(), nullable=False),
    sa.Column('pass_mark', sa.Float(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['bank_id'], ['training_banks.id'], name=op.f('fk_training_exams_bank_id_training_banks'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_training_exams_created_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_training_exams'))
    )
    with op.batch_alter_table('training_exams', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_training_exams_bank_id'), ['bank_id'], unique=False)

    op.create_table('training_questions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('bank_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('prompt', sa.Text(), nullable=False),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.Column('key', sa.JSON(), nullable=False),
    sa.Column('explanation', sa.Text(), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['bank_id'], ['training_banks.id'], name=op.f('fk_training_questions_bank_id_training_banks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_training_questions'))
    )
    with op.batch_alter_table('training_questions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_training_questions_bank_id'), ['bank_id'], unique=False)

    op.create_table('training_sparring_turns',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('sender', sa.String(length=10), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('steps', sa.JSON(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['session_id'], ['training_sparring.id'], name=op.f('fk_training_sparring_turns_session_id_training_sparring'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_training_sparring_turns')),
    sa.UniqueConstraint('session_id', 'seq', name=op.f('uq_training_sparring_turns_session_id_seq'))
    )
    with op.batch_alter_table('training_sparring_turns', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_training_sparring_turns_session_id'), ['session_id'], unique=False)

    op.create_table('training_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('exam_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('question_ids', sa.JSON(), nullable=False),
    sa.Column('answers', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deadline_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('score', sa.Float(), nullable=True),
    sa.Column('passed', sa.Boolean(), nullable=True),
    sa.Column('results', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['exam_id'], ['training_exams.id'], name=op.f('fk_training_attempts_exam_id_training_exams'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_training_attempts_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_training_attempts'))
    )
    with op.batch_alter_table('training_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_training_attempts_exam_id'), ['exam_id'], unique=False)
        batch_op.create_index('ix_training_attempts_status_deadline', ['status', 'deadline_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_training_attempts_user_id'), ['user_id'], unique=False)

    op.create_table('training_materials',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('source', sa.String(length=10), nullable=False),
    sa.Column('kb_article_id', sa.Integer(), nullable=True),
    sa.Column('attachment_id', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['attachment_id'], ['attachments.id'], name=op.f('fk_training_materials_attachment_id_attachments'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_training_materials_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['kb_article_id'], ['kb_articles.id'], name=op.f('fk_training_materials_kb_article_id_kb_articles'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_training_materials'))
    )


def downgrade() -> None:
    op.drop_table('training_materials')
    with op.batch_alter_table('training_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_training_attempts_user_id'))
        batch_op.drop_index('ix_training_attempts_status_deadline')
        batch_op.drop_index(batch_op.f('ix_training_attempts_exam_id'))

    op.drop_table('training_attempts')
    with op.batch_alter_table('training_sparring_turns', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_training_sparring_turns_session_id'))

    op.drop_table('training_sparring_turns')
    with op.batch_alter_table('training_questions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_training_questions_bank_id'))

    op.drop_table('training_questions')
    with op.batch_alter_table('training_exams', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_training_exams_bank_id'))

    op.drop_table('training_exams')
    with op.batch_alter_table('training_sparring', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_training_sparring_user_id'))
        batch_op.drop_index(batch_op.f('ix_training_sparring_scenario_id'))

    op.drop_table('training_sparring')
    op.drop_table('training_banks')
    op.drop_table('training_scenarios')
