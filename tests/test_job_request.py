"""Unit tests of create-request rules that need no server."""

from __future__ import annotations

import ipaddress

import pytest

from loopitis.errors import InvalidRequest
from loopitis.model.job_request import Limits, parse_job_request
from loopitis.model.targets import TargetPolicy

LIMITS = Limits(min_interval_ms=300, payload_max_bytes=65_536)


def problem(body: dict[str, object]) -> tuple[str, str]:
    with pytest.raises(InvalidRequest) as raised:
        parse_job_request(body, LIMITS)
    first = raised.value.problems[0]
    return first.field, first.message


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://a..invalid/", "not a valid DNS name"),
        ("http://-bad-.invalid/", "not a valid DNS name"),
        ("https://x.invalid:0/", "port 0"),
    ],
)
def test_parse_job_request_uncallable_url_refused(url: str, words: str) -> None:
    """A host name or port that can never be called is refused at creation."""
    field, message = problem({"interval": 1000, "return_url": url})

    assert field == "return_url"
    assert words in message


@pytest.mark.parametrize("method", ["GET", "DELETE", "get"])
def test_parse_job_request_query_clash_refused_for_query_methods(method: str) -> None:
    """A GET/DELETE URL already carrying a callback field name is refused."""
    url = "http://x.invalid/hook?a=1&executionNumber=999"
    field, message = problem(
        {"interval": 1000, "return_url": url, "callback_type": method}
    )

    assert field == "return_url"
    assert "executionNumber" in message


def test_parse_job_request_query_clash_allowed_for_body_methods() -> None:
    """A POST sends its fields in the body, so the URL's own query is harmless."""
    url = "http://x.invalid/hook?executionNumber=999"

    request = parse_job_request({"interval": 1000, "return_url": url}, LIMITS)

    assert request.return_url == url


@pytest.mark.parametrize(
    "address", ["169.254.169.254", "::ffff:169.254.169.254", "fd00:ec2::254"]
)
def test_target_policy_metadata_refused_even_with_private_targets(address: str) -> None:
    """Cloud metadata stays refused when private targets are allowed."""
    policy = TargetPolicy.from_entries(allow_private=True, entries=[])

    refusal = policy.refusal("metadata", ipaddress.ip_address(address))

    assert refusal is not None and "metadata" in refusal


def test_target_policy_metadata_allowed_when_listed() -> None:
    """An operator can still allow-list the metadata address explicitly."""
    policy = TargetPolicy.from_entries(allow_private=True, entries=["169.254.169.254"])

    assert policy.refusal("x", ipaddress.ip_address("169.254.169.254")) is None
