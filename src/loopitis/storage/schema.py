"""The tables, as SQLAlchemy metadata. Alembic migrations own the real schema;
this module documents it and lets ``alembic check`` compare the two."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, UUID

metadata = sa.MetaData()
LIVE = sa.text("status IN ('PENDING', 'ON_GOING')")

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", UUID(as_uuid=False), primary_key=True),
    sa.Column("internal_id", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
    sa.Column("name", sa.Text),
    sa.Column("return_url", sa.Text, nullable=False),
    sa.Column("payload", sa.Text),
    sa.Column("callback_type", sa.Text, nullable=False),
    sa.Column("notify_url", sa.Text),
    sa.Column("interval_ms", sa.BigInteger, nullable=False),
    sa.Column("delay_ms", sa.BigInteger, nullable=False),
    sa.Column("occurrences", sa.BigInteger),
    sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("partition", sa.Integer, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("next_number", sa.BigInteger, nullable=False, server_default="1"),
    sa.Column("next_due_at", sa.DateTime(timezone=True)),
    sa.Column("done", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("succeeded", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("failed", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("missed", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("ended_at", sa.DateTime(timezone=True)),
    sa.Index("jobs_live_due", "partition", "next_due_at", postgresql_where=LIVE),
    sa.Index(
        "jobs_pending",
        "partition",
        postgresql_where=sa.text("status = 'PENDING'"),
    ),
    sa.Index("jobs_status_newest", "status", sa.text("internal_id DESC")),
)

executions = sa.Table(
    "executions",
    metadata,
    sa.Column("id", UUID(as_uuid=False), primary_key=True),
    sa.Column(
        "job_id",
        UUID(as_uuid=False),
        sa.ForeignKey("jobs.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("number", sa.BigInteger, nullable=False),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("outcome", sa.Text, nullable=False),
    sa.Column("missed_reason", sa.Text),
    sa.Column("http_status", sa.Integer),
    sa.Column("error_kind", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("duration_ms", sa.Float),
    sa.Column("reported_status", sa.Text),
    sa.Column("attempt", sa.Integer, nullable=False, server_default="1"),
    sa.Column("owner", sa.Text),
    sa.Column("alert_outcome", sa.Text),
    sa.Column("alert_http_status", sa.Integer),
    sa.Column("alert_error", sa.Text),
    sa.UniqueConstraint("job_id", "number", name="executions_job_number"),
    sa.Index(
        "executions_running",
        "job_id",
        postgresql_where=sa.text("outcome = 'running'"),
    ),
    sa.Index("executions_due_at", "due_at"),
    sa.Index("executions_finished_at", "finished_at"),
)

execution_comments = sa.Table(
    "execution_comments",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column(
        "execution_id",
        UUID(as_uuid=False),
        sa.ForeignKey("executions.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("comment", sa.Text, nullable=False),
)

consumers = sa.Table(
    "consumers",
    metadata,
    sa.Column("consumer_id", sa.Text, primary_key=True),
    sa.Column("host", sa.Text, nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("partitions", ARRAY(sa.Integer), nullable=False),
    sa.Column("jobs_scheduled", sa.Integer, nullable=False),
    sa.Column("calls_in_flight", sa.Integer, nullable=False),
)
