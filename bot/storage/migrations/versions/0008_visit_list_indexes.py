"""visit list indexes: a collector's current assignments, a field collector's open requests

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.create_index('ix_assignments_current_staff', ['staff_id', 'case_id'], unique=False,
                              sqlite_where=sa.text('ended_at IS NULL'), postgresql_where=sa.text('ended_at IS NULL'))
    with op.batch_alter_table('field_requests', schema=None) as batch_op:
        batch_op.create_index('ix_field_requests_open', ['field_collector_id', 'case_id'], unique=False,
                              sqlite_where=sa.text('done_at IS NULL'), postgresql_where=sa.text('done_at IS NULL'))


def downgrade() -> None:
    with op.batch_alter_table('field_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_field_requests_open', sqlite_where=sa.text('done_at IS NULL'),
                            postgresql_where=sa.text('done_at IS NULL'))
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.drop_index('ix_assignments_current_staff', sqlite_where=sa.text('ended_at IS NULL'),
                            postgresql_where=sa.text('ended_at IS NULL'))
