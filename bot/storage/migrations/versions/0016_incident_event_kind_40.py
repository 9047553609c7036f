"""incident_events.kind up to 40 characters ("hidden_from_collector" is 21: PostgreSQL refused it in varchar(20))

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08 03:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('incident_events', schema=None) as batch_op:
        batch_op.alter_column('kind', existing_type=sa.String(length=20), type_=sa.String(length=40),
                              existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('incident_events', schema=None) as batch_op:
        batch_op.alter_column('kind', existing_type=sa.String(length=40), type_=sa.String(length=20),
                              existing_nullable=False)
