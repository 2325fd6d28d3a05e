"""Schemathesis against the gateway's own OpenAPI schema: no 5xx, no violation.

It runs against a real gateway of its own, on its own database and topic and
with no consumer: the jobs it creates are stored but never fired, so the URLs
it makes up are never called. The guard is on, as in production.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema

from loopitis.local.ports import free_port
from support.database import create_database
from support.stack import Stack, stack_env

MAX_EXAMPLES = 80
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
async def fuzz_database(postgres_url: str) -> str:
    return await create_database(postgres_url)


@pytest.fixture(scope="module")
def fuzz_gateway(
    fuzz_database: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    topic = f"loopitis-fuzz-{uuid.uuid4().hex[:8]}"
    env = stack_env(
        fuzz_database, kafka_bootstrap, topic, LOOPITIS_ALLOW_PRIVATE_TARGETS="false"
    )
    running = Stack(env, tmp_path_factory.mktemp("fuzz-gateway"), free_port())
    running.env["LOOPITIS_PUBLIC_URL"] = running.base_url
    try:
        running.start_gateway()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def api_schema(fuzz_gateway: Stack) -> OpenApiSchema:
    return schemathesis.openapi.from_url(f"{fuzz_gateway.base_url}/openapi.json")


# schemathesis' pytest loader (from_fixture) does not run under pytest 9, so
# each operation is fuzzed through its Hypothesis strategy. All operations of
# the schema are taken, so a new endpoint is fuzzed without a change here.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_gateway_answers_generated_requests_within_its_schema(
    api_schema: OpenApiSchema, fuzz_gateway: Stack, mode: GenerationMode
) -> None:
    """Valid and invalid requests to every operation, with credentials: no 5xx,
    every answer as documented (status, content type, headers, body schema)."""
    counts: dict[str, int] = {}
    failures: dict[str, BaseException] = {}
    for result in api_schema.get_all_operations():
        assert isinstance(result, Ok), f"the schema has a broken operation: {result}"
        operation = result.ok()
        try:
            counts[operation.label] = fuzz(operation, mode, fuzz_gateway)
        except Unsatisfiable:
            counts[operation.label] = 0  # nothing to break: it takes no input
        except (Exception, BaseExceptionGroup) as exc:
            failures[operation.label] = exc

    print(f"schemathesis {mode.value}: {sum(counts.values())} cases, {counts}")
    assert not failures, "\n\n".join(
        f"{label}: {failure}" for label, failure in failures.items()
    )
    assert {"POST /set/notifier", "GET /requests/get_list"} <= set(counts)


def fuzz(
    operation: APIOperation[Any, Any, Any, Any], mode: GenerationMode, gateway: Stack
) -> int:
    """Run one operation's generated cases; return how many were sent."""
    sent: list[schemathesis.Case[Any]] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def answers_as_documented(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(
            base_url=gateway.base_url, auth=gateway.auth, checks=CHECKS
        )
        sent.append(case)

    answers_as_documented()
    return len(sent)
