"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-12-04 17:16:07.560584
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consumers",
        sa.Column("consumer_id", sa.Text(), nullable=False),
        sa.Column("host", sa.Text(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("partitions", postgresql.ARRAY(sa.Integer()), nullable=False),
        sa.Column("jobs_scheduled", sa.Integer(), nullable=False),
        sa.Column("calls_in_flight", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("consumer_id"),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.UUID(as_uuid=False), nullable=False),
        sa.Column(
            "internal_id", sa.BigInteger(), sa.Identity(always=False), nullable=False
        ),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("return_url", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("callback_type", sa.Text(), nullable=False),
        sa.Column("notify_url", sa.Text(), nullable=True),
        sa.Column("interval_ms", sa.BigInteger(), nullable=False),
        sa.Column("delay_ms", sa.BigInteger(), nullable=False),
        sa.Column("occurrences", sa.BigInteger(), nullable=True),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("next_number", sa.BigInteger(), server_default="1", nullable=False),
        sa.Column("next_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("succeeded", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("failed", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("missed", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("internal_id"),
    )
    op.create_index(
        "jobs_live_due",
        "jobs",
        ["partition", "next_due_at"],
        unique=False,
        postgresql_where=sa.text("status IN ('PENDING', 'ON_GOING')"),
    )
    op.create_index(
        "jobs_pending",
        "jobs",
        ["partition"],
        unique=False,
        postgresql_where=sa.text("status = 'PENDING'"),
    )
    op.create_index(
        "jobs_status_newest",
        "jobs",
        ["status", sa.literal_column("internal_id DESC")],
        unique=False,
    )
    op.create_table(
        "executions",
        sa.Column("id", sa.UUID(as_uuid=False), nullable=False),
        sa.Column("job_id", sa.UUID(as_uuid=False), nullable=False),
        sa.Column("number", sa.BigInteger(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("missed_reason", sa.Text(), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("error_kind", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=True),
        sa.Column("reported_status", sa.Text(), nullable=True),
        sa.Column("attempt", sa.Integer(), server_default="1", nullable=False),
        sa.Column("owner", sa.Text(), nullable=True),
        sa.Column("alert_outcome", sa.Text(), nullable=True),
        sa.Column("alert_http_status", sa.Integer(), nullable=True),
        sa.Column("alert_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("job_id", "number", name="executions_job_number"),
    )
    op.create_index(
        "executions_running",
        "executions",
        ["job_id"],
        unique=False,
        postgresql_where=sa.text("outcome = 'running'"),
    )
    op.create_table(
        "execution_comments",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("execution_id", sa.UUID(as_uuid=False), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["execution_id"], ["executions.id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_execution_comments_execution_id"),
        "execution_comments",
        ["execution_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_execution_comments_execution_id"), table_name="execution_comments"
    )
    op.drop_table("execution_comments")
    op.drop_index(
        "executions_running",
        table_name="executions",
        postgresql_where=sa.text("outcome = 'running'"),
    )
    op.drop_table("executions")
    op.drop_index("jobs_status_newest", table_name="jobs")
    op.drop_index(
        "jobs_pending",
        table_name="jobs",
        postgresql_where=sa.text("status = 'PENDING'"),
    )
    op.drop_index(
        "jobs_live_due",
        table_name="jobs",
        postgresql_where=sa.text("status IN ('PENDING', 'ON_GOING')"),
    )
    op.drop_table("jobs")
    op.drop_table("consumers")
