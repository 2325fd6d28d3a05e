"""Callbacks and alerts are signed the Standard Webhooks way, secrets stay secret."""

from __future__ import annotations

import base64
import os
import uuid

import httpx
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from loopitis.consumer.signing import Signer
from loopitis.errors import ConfigError
from loopitis.settings import load_settings
from support.jobs import create_job
from support.receiver import Receiver
from support.stack import PASSWORD, SIGNING_SECRET, Stack


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


async def test_receiver_verifies_post_callback_with_standardwebhooks(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """The body verifies with the shared secret; webhook-id is the execution id."""
    path = f"/signed-post-{uuid.uuid4().hex[:8]}"
    await create_job(api, interval="1h", occurrences=1, return_url=receiver.url(path))

    call = (await receiver.wait_for_calls(path, 1, timeout_s=10))[0]
    document = Webhook(SIGNING_SECRET).verify(call.body, dict(call.headers))

    assert call.headers["webhook-id"] == document["executionId"]
    assert call.headers["webhook-id"] == call.headers["Loopitis-Execution-Id"]
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(call.body, dict(call.headers))
    with pytest.raises(WebhookVerificationError):
        Webhook(SIGNING_SECRET).verify(call.body + b" ", dict(call.headers))


async def test_receiver_verifies_get_callback_and_alert(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """A GET callback signs its empty body; the alert is signed with its own id."""
    tag = uuid.uuid4().hex[:8]
    path, alerts = f"/signed-get-{tag}", f"/signed-alerts-{tag}"
    await create_job(
        api,
        interval="1h",
        occurrences=1,
        callback_type="GET",
        return_url=receiver.url(path, status=503),
        notify_status_not_ok=receiver.url(alerts),
    )

    call = (await receiver.wait_for_calls(path, 1, timeout_s=10))[0]
    alert = (await receiver.wait_for_calls(alerts, 1, timeout_s=10))[0]
    webhook = Webhook(SIGNING_SECRET)
    webhook.verify(b"", dict(call.headers), json_parse=False)
    document = webhook.verify(alert.body, dict(alert.headers))

    assert call.headers["webhook-id"] == call.param("executionId")
    assert alert.headers["webhook-id"] == f"alert-{document['executionId']}"
    assert document["callback_status_code"] == 503


def test_signer_during_rotation_satisfies_old_and_new_secret() -> None:
    """With two secrets each receiver verifies, whichever secret it holds."""
    current, previous, unrelated = new_secret(), new_secret(), new_secret()
    body = b'{"executionId": "e"}'

    headers = Signer((current, previous)).headers("msg-1", body)

    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(current).verify(body, headers)
    Webhook(previous).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(unrelated).verify(body, headers)


def test_signer_without_secret_adds_no_headers() -> None:
    """A development consumer without a secret sends unsigned calls."""
    assert Signer(()).headers("msg-1", b"{}") == {}


@pytest.fixture
def production_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("LOOPITIS_"):
            monkeypatch.delenv(name)
    values = {
        "LOOPITIS_ENV": "production",
        "LOOPITIS_DATABASE_URL": "postgresql://u:p@db:5432/loopitis",
        "LOOPITIS_KAFKA_BOOTSTRAP": "kafka:9092",
        "LOOPITIS_USERNAME": "loopitis",
        "LOOPITIS_PASSWORD": PASSWORD,
        "LOOPITIS_PUBLIC_URL": "https://loopitis.example.com",
        "LOOPITIS_SIGNING_SECRET": new_secret(),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_production_needs_a_signing_secret(production_env: pytest.MonkeyPatch) -> None:
    """Without a secret production stops with one line naming the setting."""
    production_env.delenv("LOOPITIS_SIGNING_SECRET")

    with pytest.raises(ConfigError) as raised:
        load_settings()

    assert raised.value.setting == "LOOPITIS_SIGNING_SECRET"
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("LOOPITIS_SIGNING_SECRET", "whsec_not base64 at all!"),
        ("LOOPITIS_SIGNING_SECRET", "whsec_" + base64.b64encode(b"short").decode()),
        ("LOOPITIS_SIGNING_SECRET_PREVIOUS", "change-me-please-now"),
    ],
)
def test_malformed_signing_secret_is_refused_without_showing_it(
    production_env: pytest.MonkeyPatch, setting: str, value: str
) -> None:
    """A wrong secret is named by its setting; the value itself is never echoed."""
    production_env.setenv(setting, value)

    with pytest.raises(ConfigError) as raised:
        load_settings()

    assert raised.value.setting == setting
    assert value.removeprefix("whsec_") not in str(raised.value)


@pytest.mark.parametrize("password", ["change-me", "changeme", "short-pw"])
def test_production_refuses_weak_passwords_without_echoing_them(
    production_env: pytest.MonkeyPatch, password: str
) -> None:
    """Placeholder and short passwords stop production; the message hides them."""
    production_env.setenv("LOOPITIS_PASSWORD", password)

    with pytest.raises(ConfigError) as raised:
        load_settings()

    assert raised.value.setting == "LOOPITIS_PASSWORD"
    assert password not in str(raised.value)


def test_private_targets_default_differs_by_environment(
    production_env: pytest.MonkeyPatch,
) -> None:
    """Production refuses private targets unless told; development allows them."""
    assert load_settings().private_targets_allowed is False

    production_env.setenv("LOOPITIS_ENV", "development")
    assert load_settings().private_targets_allowed is True

    production_env.setenv("LOOPITIS_ALLOW_PRIVATE_TARGETS", "false")
    assert load_settings().private_targets_allowed is False


async def test_wrong_password_is_not_reflected_in_the_answer(stack: Stack) -> None:
    """A 401 never repeats the credentials it was given."""
    guess = "guessed-password-" + uuid.uuid4().hex
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as client:
        response = await client.get("/requests/get_list", auth=(stack.auth[0], guess))

    assert response.status_code == 401
    assert guess not in response.text
    assert guess not in (stack.logdir / "gateway.log").read_text()
