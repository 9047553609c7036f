"""custody: backups, legal holds, purged-case tombstones, outages

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 09:05:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.storage.types

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DT = bot.storage.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('backups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('backup_id', sa.String(length=64), nullable=False),
    sa.Column('started_at', UTC_DT, nullable=False),
    sa.Column('finished_at', UTC_DT, nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('targets', sa.JSON(), nullable=False),
    sa.Column('manifest_sha256', sa.String(length=64), nullable=True),
    sa.Column('audit_seq', sa.BigInteger(), nullable=True),
    sa.Column('files', sa.Integer(), nullable=False),
    sa.Column('bytes_copied', sa.BigInteger(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_backups'))
    )
    with op.batch_alter_table('backups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_backups_backup_id'), ['backup_id'], unique=False)

    op.create_table('legal_holds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('placed_by', sa.String(length=100), nullable=False),
    sa.Column('placed_at', UTC_DT, nullable=False),
    sa.Column('released_at', UTC_DT, nullable=True),
    sa.Column('released_by', sa.String(length=100), nullable=True),
    sa.Column('release_reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_legal_holds_case_id_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_legal_holds'))
    )
    with op.batch_alter_table('legal_holds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_legal_holds_case_id'), ['case_id'], unique=False)

    op.create_table('purged_cases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('bank', sa.String(length=100), nullable=False),
    sa.Column('case_no', sa.String(length=64), nullable=False),
    sa.Column('contract_end', sa.Date(), nullable=True),
    sa.Column('entrusted_on', sa.Date(), nullable=True),
    sa.Column('case_created_at', UTC_DT, nullable=True),
    sa.Column('keep_until', sa.Date(), nullable=False),
    sa.Column('purged_at', UTC_DT, nullable=False),
    sa.Column('rows', sa.JSON(), nullable=False),
    sa.Column('files', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_purged_cases'))
    )
    with op.batch_alter_table('purged_cases', schema=None) as batch_op:
        batch_op.create_index('ix_purged_cases_bank_case_no', ['bank', 'case_no'], unique=False)

    op.create_table('outages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('down_since', UTC_DT, nullable=False),
    sa.Column('back_at', UTC_DT, nullable=False),
    sa.Column('repair_due_at', UTC_DT, nullable=False),
    sa.Column('notified_at', UTC_DT, nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outages')),
    sa.UniqueConstraint('down_since', name=op.f('uq_outages_down_since'))
    )


def downgrade() -> None:
    op.drop_table('outages')
    with op.batch_alter_table('purged_cases', schema=None) as batch_op:
        batch_op.drop_index('ix_purged_cases_bank_case_no')
    op.drop_table('purged_cases')
    with op.batch_alter_table('legal_holds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_legal_holds_case_id'))
    op.drop_table('legal_holds')
    with op.batch_alter_table('backups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_backups_backup_id'))
    op.drop_table('backups')
