"""indexes on execution times for reports and the dashboard

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05 10:00:00.000000
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Reports select executions by due time; the system page and /metrics
    # look at what finished in the last minutes.
    op.create_index("executions_due_at", "executions", ["due_at"], unique=False)
    op.create_index(
        "executions_finished_at", "executions", ["finished_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("executions_finished_at", table_name="executions")
    op.drop_index("executions_due_at", table_name="executions")
