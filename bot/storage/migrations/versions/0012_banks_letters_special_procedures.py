"""the rest of the procedure: banks and their agreements, reports to a bank's emergency contact, final notices by registered letter, special procedures

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08 01:57:30.494917
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.storage.types

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('banks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('agreement_no', sa.String(length=64), nullable=False),
    sa.Column('agreement_start', sa.Date(), nullable=False),
    sa.Column('agreement_end', sa.Date(), nullable=False),
    sa.Column('routine_contact', sa.Text(), nullable=False),
    sa.Column('emergency_contact', sa.Text(), nullable=False),
    sa.Column('created_at', bot.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', bot.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_banks')),
    sa.UniqueConstraint('name', name=op.f('uq_banks_name'))
    )
    op.create_table('bank_alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('bank_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=20), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('emergency_contact', sa.Text(), nullable=False),
    sa.Column('reported_by_id', sa.Integer(), nullable=True),
    sa.Column('reported_at', bot.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['bank_id'], ['banks.id'], name=op.f('fk_bank_alerts_bank_id_banks')),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_bank_alerts_case_id_cases')),
    sa.ForeignKeyConstraint(['reported_by_id'], ['staff.id'], name=op.f('fk_bank_alerts_reported_by_id_staff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bank_alerts'))
    )
    with op.batch_alter_table('bank_alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bank_alerts_case_id'), ['case_id'], unique=False)

    op.create_table('letters',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('sent_on', sa.Date(), nullable=False),
    sa.Column('tracking_no', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=14), nullable=False),
    sa.Column('signed_on', sa.Date(), nullable=True),
    sa.Column('term_start', sa.Date(), nullable=True),
    sa.Column('term_end', sa.Date(), nullable=True),
    sa.Column('remind_at', bot.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reminded_at', bot.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('expires_at', bot.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('expired_at', bot.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('recorded_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', bot.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', bot.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_letters_case_id_cases')),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['staff.id'], name=op.f('fk_letters_recorded_by_id_staff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_letters'))
    )
    with op.batch_alter_table('letters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_letters_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_letters_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_letters_remind_at'), ['remind_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_letters_status'), ['status'], unique=False)

    op.create_table('special_procedures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('applicant_id', sa.Integer(), nullable=False),
    sa.Column('applied_at', bot.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', bot.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('arranged_by_id', sa.Integer(), nullable=True),
    sa.Column('arranged_at', bot.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_by_id', sa.Integer(), nullable=True),
    sa.Column('closed_at', bot.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('result', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['applicant_id'], ['staff.id'], name=op.f('fk_special_procedures_applicant_id_staff')),
    sa.ForeignKeyConstraint(['arranged_by_id'], ['staff.id'], name=op.f('fk_special_procedures_arranged_by_id_staff')),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_special_procedures_case_id_cases')),
    sa.ForeignKeyConstraint(['closed_by_id'], ['staff.id'], name=op.f('fk_special_procedures_closed_by_id_staff')),
    sa.ForeignKeyConstraint(['decided_by_id'], ['staff.id'], name=op.f('fk_special_procedures_decided_by_id_staff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_special_procedures'))
    )
    with op.batch_alter_table('special_procedures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_special_procedures_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_special_procedures_status'), ['status'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('special_procedures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_special_procedures_status'))
        batch_op.drop_index(batch_op.f('ix_special_procedures_case_id'))

    op.drop_table('special_procedures')
    with op.batch_alter_table('letters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_letters_status'))
        batch_op.drop_index(batch_op.f('ix_letters_remind_at'))
        batch_op.drop_index(batch_op.f('ix_letters_expires_at'))
        batch_op.drop_index(batch_op.f('ix_letters_case_id'))

    op.drop_table('letters')
    with op.batch_alter_table('bank_alerts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bank_alerts_case_id'))

    op.drop_table('bank_alerts')
    op.drop_table('banks')
