"""office side: payments, imports.kind, promises.paid_fen, case status reason, incident owner's live location

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 09:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.storage.types

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DT = bot.storage.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('payments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('import_id', sa.Integer(), nullable=True),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('paid_on', sa.Date(), nullable=False),
    sa.Column('channel', sa.String(length=40), nullable=True),
    sa.Column('reference', sa.String(length=64), nullable=True),
    sa.Column('row_key', sa.String(length=64), nullable=False),
    sa.Column('created_at', UTC_DT, nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_payments_case_id_cases')),
    sa.ForeignKeyConstraint(['import_id'], ['imports.id'], name=op.f('fk_payments_import_id_imports')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payments')),
    sa.UniqueConstraint('row_key', name=op.f('uq_payments_row_key'))
    )
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payments_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_payments_paid_on'), ['paid_on'], unique=False)
    with op.batch_alter_table('imports', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=10), server_default='cases', nullable=False))
    with op.batch_alter_table('promises', schema=None) as batch_op:
        batch_op.add_column(sa.Column('paid_fen', sa.BigInteger(), server_default='0', nullable=False))
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status_reason', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('status_changed_at', UTC_DT, nullable=True))
        batch_op.add_column(sa.Column('status_changed_by_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_cases_status_changed_by_id_staff'), 'staff',
                                    ['status_changed_by_id'], ['id'])
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owner_location_chat_id', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('owner_location_message_id', sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_column('owner_location_message_id')
        batch_op.drop_column('owner_location_chat_id')
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_cases_status_changed_by_id_staff'), type_='foreignkey')
        batch_op.drop_column('status_changed_by_id')
        batch_op.drop_column('status_changed_at')
        batch_op.drop_column('status_reason')
    with op.batch_alter_table('promises', schema=None) as batch_op:
        batch_op.drop_column('paid_fen')
    with op.batch_alter_table('imports', schema=None) as batch_op:
        batch_op.drop_column('kind')
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payments_paid_on'))
        batch_op.drop_index(batch_op.f('ix_payments_case_id'))
    op.drop_table('payments')
