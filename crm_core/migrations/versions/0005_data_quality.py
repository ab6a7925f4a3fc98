"""data-quality audits and normalisation

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quality_audits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ran_at", sa.DateTime(), nullable=False),
        sa.Column("trigger", sa.String(length=20), nullable=False),
        sa.Column("import_ref", sa.String(length=300), nullable=True),
        sa.Column("book_score", sa.Float(), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quality_audits")),
    )
    with op.batch_alter_table("quality_audits", schema=None) as batch_op:
        batch_op.create_index("ix_quality_audits_ran_at", ["ran_at"], unique=False)
    op.create_table(
        "quality_field_scores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("audit_id", sa.Integer(), nullable=False),
        sa.Column("field_key", sa.String(length=300), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("fill_rate", sa.Float(), nullable=False),
        sa.Column("distinct_values", sa.Integer(), nullable=False),
        sa.Column("placeholders", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["audit_id"], ["quality_audits.id"],
            name=op.f("fk_quality_field_scores_audit_id_quality_audits"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quality_field_scores")),
    )
    with op.batch_alter_table("quality_field_scores", schema=None) as batch_op:
        batch_op.create_index("ix_quality_field_scores_audit", ["audit_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("quality_field_scores", schema=None) as batch_op:
        batch_op.drop_index("ix_quality_field_scores_audit")
    op.drop_table("quality_field_scores")
    with op.batch_alter_table("quality_audits", schema=None) as batch_op:
        batch_op.drop_index("ix_quality_audits_ran_at")
    op.drop_table("quality_audits")
