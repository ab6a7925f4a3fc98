"""sign-in: credentials, sessions, API tokens (slot reserved for the sign-in work)

Revision ID: 0003
Revises: 0002
"""
from alembic import op  # noqa: F401  (used once the slot is filled)

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
