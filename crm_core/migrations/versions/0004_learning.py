"""learned model snapshots with validation reports: format version, kind, validation, chosen candidate

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("model_snapshots") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("kind", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("validation", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("chosen", sa.String(length=60), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_snapshots") as batch:
        batch.drop_column("chosen")
        batch.drop_column("validation")
        batch.drop_column("kind")
        batch.drop_column("version")
