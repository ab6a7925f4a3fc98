"""learned model snapshots with validation reports (slot reserved for the learning work)

Revision ID: 0004
Revises: 0003
"""
from alembic import op  # noqa: F401  (used once the slot is filled)

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
