"""Executions: comments from receivers and operators."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from fastapi import APIRouter, Depends, Request

from loopitis.errors import InvalidField, NotFound
from loopitis.gateway.body import read_json
from loopitis.gateway.deps import PoolDep, SettingsDep, require_credentials
from loopitis.gateway.openapi import COMMENT_SCHEMA
from loopitis.gateway.render import iso
from loopitis.storage import jobs as store

router = APIRouter(dependencies=[Depends(require_credentials)])
MAX_COMMENT_LENGTH = 10_000


@router.post(
    "/set/execution/comment",
    openapi_extra={"requestBody": COMMENT_SCHEMA},
    summary="Append a comment to an execution",
)
@router.post("/set/execution/comment/", include_in_schema=False)
async def add_comment(
    request: Request, settings: SettingsDep, pool: PoolDep
) -> dict[str, object]:
    body = await read_json(request, settings.request_max_bytes)
    execution_id, comment = _parse(body)
    row = await store.add_comment(pool, execution_id, comment)
    if row is None:
        raise NotFound("executionId", execution_id, "execution")
    return {
        "executionId": execution_id,
        "comment": {"at": iso(row["created_at"]), "comment": row["comment"]},
    }


def _parse(body: object) -> tuple[str, str]:
    if not isinstance(body, Mapping):
        raise InvalidField("body", "the request body must be a JSON object")
    unknown = sorted(str(key) for key in body if key not in ("executionId", "comment"))
    if unknown:
        raise InvalidField(
            unknown[0],
            f"unknown field '{unknown[0][:80]}'; a comment has executionId and comment",
        )
    raw_id, comment = body.get("executionId"), body.get("comment")
    if not isinstance(raw_id, str):
        raise InvalidField(
            "executionId", "executionId is required and must be a string"
        )
    try:
        execution_id = str(uuid.UUID(raw_id.strip()))
    except ValueError as exc:
        raise NotFound("executionId", raw_id[:80], "execution") from exc
    if not isinstance(comment, str) or not comment.strip():
        raise InvalidField("comment", "comment must be a non-empty string")
    if len(comment) > MAX_COMMENT_LENGTH:
        raise InvalidField(
            "comment",
            f"comment has {len(comment)} characters; at most {MAX_COMMENT_LENGTH}",
        )
    if "\x00" in comment:
        raise InvalidField("comment", "comment contains a NUL character")
    try:
        comment.encode()
    except UnicodeEncodeError as exc:
        raise InvalidField("comment", "comment contains a lone surrogate") from exc
    return execution_id, comment
