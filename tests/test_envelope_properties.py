"""Property tests of the callback envelope: what a receiver decodes is what was sent."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st

from loopitis.model.envelope import Envelope

# Text the gateway accepts: no NUL, no lone surrogates.
_TEXT = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"))
_QUERY = st.lists(
    st.tuples(
        st.text("abcxyz_", min_size=1, max_size=5), st.text("0123456789", max_size=5)
    ),
    max_size=4,
)


@st.composite
def envelopes(draw: st.DrawFn) -> Envelope:
    return Envelope(
        job_id=str(draw(st.uuids())),
        job_name=draw(st.none() | _TEXT),
        requested_times=draw(st.none() | st.integers(1, 1_000_000_000)),
        execution_number=draw(st.integers(1, 1_000_000_000)),
        execution_id=str(draw(st.uuids())),
        payload=draw(st.none() | _TEXT),
        show_link="http://127.0.0.1:8080/requests/get_list?requestId=x&token=y",
        cancel_link="http://127.0.0.1:8080/requests/cancel_task?requestId=x&token=y",
        scheduled_ms=draw(st.integers(0, 32_503_680_000_000)),
    )


@settings(max_examples=300)
@given(envelopes())
def test_json_body_decodes_to_exactly_the_fields(envelope: Envelope) -> None:
    """The JSON body decodes to the nine fields, values unchanged."""
    decoded = json.loads(envelope.json_body())

    assert decoded == envelope.fields()
    assert len(decoded) == 9


@settings(max_examples=300)
@given(envelopes(), _QUERY)
def test_query_url_keeps_the_receivers_query_and_adds_the_fields(
    envelope: Envelope, own_query: list[tuple[str, str]]
) -> None:
    """The receiver's own query comes first, untouched; every field follows once."""
    own = "&".join(f"{name}={value}" for name, value in own_query)
    url = "http://127.0.0.1:9000/hook" + (f"?{own}" if own else "")

    query = urlsplit(envelope.query_url(url)).query
    added = parse_qs(query.removeprefix(own).lstrip("&"), keep_blank_values=True)

    assert query.startswith(own)
    for name, value in envelope.fields().items():
        expected = "" if value is None else str(value)
        assert added[name] == [expected], name
