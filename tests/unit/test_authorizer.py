"""The Lambda REQUEST authorizer (functions/authorizer), called as API Gateway calls it with the sample events in
events/authorizer/ (moto's table holds the keys, made with agent_core.auth): where a key may be presented, the
operator's key, keys that are malformed, unknown or revoked, the key cache and its expiry, the policy and context it
answers, the open mode, and that no key is ever logged."""

from __future__ import annotations

import copy
import io
import json
import logging
import sys
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from agent_core import auth
from agent_core.config import get_settings
from agent_core.timeutil import now_iso
from devserver import apigw
from devserver.gateway import load_handler
from devserver.template import Route
from tests.conftest import ROOT, TEMPLATE

FUNCTION = TEMPLATE.of_type("AWS::Serverless::Function")["AuthorizerFunction"]
ROUTE = Route("AuthorizerFunction", "EVENT", "AuthorizerFunction", ROOT / FUNCTION["CodeUri"], FUNCTION["Handler"])
REST = json.loads((ROOT / "events" / "authorizer" / "rest_request.json").read_text())
CONNECT = json.loads((ROOT / "events" / "authorizer" / "websocket_connect.json").read_text())
OPERATOR_KEY = "operator-key-for-the-authorizer-tests"


@pytest.fixture
def keys_required(aws_mock: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """As deployed: keys required, the operator's key known, no cache unless a test asks for one."""
    monkeypatch.setenv("AUTH", "keys")
    monkeypatch.setenv("ADMIN_API_KEY", OPERATOR_KEY)
    monkeypatch.delenv("ADMIN_API_KEY_SECRET", raising=False)
    monkeypatch.setenv("AUTH_CACHE_TTL_S", "0")
    get_settings.cache_clear()


@pytest.fixture
def logged() -> Iterator[io.StringIO]:
    """Everything the authorizer logs, at DEBUG, formatted as Powertools writes it to CloudWatch."""
    load_handler(ROUTE)
    module_logger = sys.modules["_function_AuthorizerFunction_app"].logger  # the module as devserver.gateway loads it
    std = module_logger._logger
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(module_logger.registered_formatter)
    level = std.level
    std.addHandler(handler)
    std.setLevel(logging.DEBUG)
    yield out
    std.removeHandler(handler)
    std.setLevel(level)


def authorize(event: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = load_handler(ROUTE)(event, apigw.LambdaContext(function_name="AuthorizerFunction"))
    return answer


def refused(event: dict[str, Any]) -> bool:
    """API Gateway's contract: an exception whose message is exactly "Unauthorized" answers 401."""
    try:
        authorize(event)
    except Exception as exc:
        assert str(exc) == "Unauthorized"
        return True
    return False


def rest(headers: dict[str, str] | None = None, query: dict[str, str] | None = None) -> dict[str, Any]:
    """The sample REST event, with only the given headers carrying a key (none: no key at all)."""
    event = copy.deepcopy(REST)
    kept = {k: v for k, v in event["headers"].items() if k.lower() not in ("authorization", "x-api-key")}
    event["headers"] = {**kept, **(headers or {})}
    event["multiValueHeaders"] = {k: [v] for k, v in event["headers"].items()}
    if query is not None:
        event["queryStringParameters"] = {**event["queryStringParameters"], **query}
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in event["queryStringParameters"].items()}
    return event


def connect(token: str | None, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """The sample `$connect` event with `?token=` (none: without one)."""
    event = copy.deepcopy(CONNECT)
    query = {k: v for k, v in event["queryStringParameters"].items() if k != "token"}
    if token is not None:
        query["token"] = token
    event["queryStringParameters"] = query
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()}
    event["headers"] = {**event["headers"], **(headers or {})}
    return event


def test_a_client_key_as_bearer_or_x_api_key(keys_required: None) -> None:
    record, secret = auth.create_key("alice")

    by_bearer = authorize(rest({"Authorization": f"Bearer {secret}"}))
    by_header = authorize(rest({"x-api-key": secret}))
    lowercase_scheme = authorize(rest({"authorization": f"bearer {secret}"}))

    for answer in (by_bearer, by_header, lowercase_scheme):
        assert answer["principalId"] == record.key_id
        assert answer["context"] == {"client_id": record.key_id, "role": "client"}
        assert all(isinstance(v, str) for v in answer["context"].values())  # API Gateway passes strings only
        assert answer["policyDocument"] == {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": "execute-api:Invoke",
                    "Effect": "Allow",
                    # The stage's wildcard, not the route asked about: the answer may be cached for the key
                    "Resource": "arn:aws:execute-api:us-east-1:123456789012:abcdef123/dev/*",
                }
            ],
        }


def test_token_in_the_query_counts_on_the_websocket_handshake_only(keys_required: None) -> None:
    record, secret = auth.create_key("browser")

    handshake = authorize(connect(secret))

    assert handshake["context"] == {"client_id": record.key_id, "role": "client"}
    assert handshake["policyDocument"]["Statement"][0]["Resource"] == (
        "arn:aws:execute-api:us-east-1:123456789012:wsapi12345/dev/*"
    )
    assert refused(rest(query={"token": secret}))  # a REST request's URL ends up in histories and logs
    assert refused(connect(None))
    # The handshake's headers count too (the Python client sends the key there)
    assert authorize(connect(None, {"Authorization": f"Bearer {secret}"}))["principalId"] == record.key_id


def test_the_operators_key(keys_required: None) -> None:
    by_bearer = authorize(rest({"Authorization": f"Bearer {OPERATOR_KEY}"}))
    by_token = authorize(connect(OPERATOR_KEY))

    for answer in (by_bearer, by_token):
        assert answer["principalId"] == "operator"
        assert answer["context"] == {"client_id": "operator", "role": "operator"}
    assert refused(rest({"Authorization": f"Bearer {OPERATOR_KEY}x"}))
    assert refused(rest({"Authorization": f"Bearer {OPERATOR_KEY[:-1]}"}))


@pytest.mark.parametrize(
    "key",
    [
        "",
        "   ",
        "not-a-key",
        "agk_",
        "agk_0123456789abcdef",  # no secret
        "agk_0123456789ABCDEF_secret",  # the id is lower-case hex
        "agk_0123456789abcde_secret",  # an id too short
        "agk_zz23456789abcdef_secret",
        "agk_0123456789abcdef_\udcff",  # not even UTF-8
        "x" * 10_000,
    ],
)
def test_a_malformed_key_is_refused(keys_required: None, key: str) -> None:
    assert refused(rest({"Authorization": f"Bearer {key}"}))
    assert refused(rest({"x-api-key": key}))


def test_an_unknown_key_and_a_wrong_secret_are_refused(keys_required: None) -> None:
    record, secret = auth.create_key("alice")

    assert refused(rest({"Authorization": "Bearer agk_0123456789abcdef_example"}))  # the sample's: nobody made it
    assert refused(rest({"Authorization": f"Bearer agk_{record.key_id}_not-its-secret"}))
    assert refused(rest({"Authorization": f"Bearer {secret[:-1]}"}))
    assert refused(rest({"Authorization": f"Basic {secret}"}))  # not a scheme the API speaks
    assert not refused(rest({"Authorization": f"Bearer {secret}"}))


def test_a_revoked_key_is_refused_on_the_next_call(keys_required: None) -> None:
    record, secret = auth.create_key("alice")
    other, other_secret = auth.create_key("bob")
    assert not refused(rest({"Authorization": f"Bearer {secret}"}))

    auth.revoke_key(record.key_id)

    assert refused(rest({"Authorization": f"Bearer {secret}"}))
    assert refused(connect(secret))
    assert authorize(rest({"x-api-key": other_secret}))["principalId"] == other.key_id


class _Clock:
    """`time` as agent_core.auth sees it, with a monotonic clock the test moves."""

    def __init__(self) -> None:
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset


def test_a_cached_key_outlives_a_revocation_in_the_table_until_it_expires(
    keys_required: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTH_CACHE_TTL_S", "30")
    get_settings.cache_clear()
    clock = _Clock()
    monkeypatch.setattr(auth, "time", SimpleNamespace(monotonic=clock.monotonic))
    record, secret = auth.create_key("alice")
    bearer = rest({"Authorization": f"Bearer {secret}"})
    assert authorize(bearer)["principalId"] == record.key_id  # read, and cached for 30 s

    auth.keys().revoke_key(record.key_id, now_iso())  # in the table, behind this process's back

    assert authorize(bearer)["principalId"] == record.key_id
    clock.offset = 29.0
    assert authorize(bearer)["principalId"] == record.key_id  # still within the cache's 30 s
    clock.offset = 31.0
    assert refused(bearer)  # expired: read again, revoked
    clock.offset = 100.0
    assert refused(bearer)  # the revoked record is cached too, and stays refused


def test_a_revocation_through_the_module_drops_the_cached_key_at_once(
    keys_required: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTH_CACHE_TTL_S", "3600")
    get_settings.cache_clear()
    record, secret = auth.create_key("alice")
    other, other_secret = auth.create_key("bob")
    assert authorize(rest({"Authorization": f"Bearer {secret}"}))["principalId"] == record.key_id
    assert authorize(rest({"Authorization": f"Bearer {other_secret}"}))["principalId"] == other.key_id

    auth.revoke_key(record.key_id)
    auth.keys().revoke_key(other.key_id, now_iso())  # the other one behind the cache's back: still cached

    assert refused(rest({"Authorization": f"Bearer {secret}"}))
    assert authorize(rest({"Authorization": f"Bearer {other_secret}"}))["principalId"] == other.key_id


def test_an_open_stage_lets_a_request_without_a_valid_key_in_as_the_anonymous_operator(
    aws_mock: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AUTH", raising=False)
    monkeypatch.setenv("ADMIN_API_KEY", OPERATOR_KEY)
    monkeypatch.setenv("AUTH_CACHE_TTL_S", "0")
    get_settings.cache_clear()
    record, secret = auth.create_key("alice")

    anonymous = [
        authorize(rest()),
        authorize(rest({"Authorization": "Bearer agk_0123456789abcdef_x"})),
        authorize(connect(None)),
    ]
    client = authorize(rest({"Authorization": f"Bearer {secret}"}))
    operator = authorize(connect(OPERATOR_KEY))

    for answer in anonymous:
        assert answer["principalId"] == "anonymous"
        assert answer["context"] == {"client_id": "anonymous", "role": "operator"}
    assert client["context"] == {"client_id": record.key_id, "role": "client"}  # a key still names its client
    assert operator["context"] == {"client_id": "operator", "role": "operator"}


def test_no_key_is_ever_logged(keys_required: None, logged: io.StringIO, capfd: pytest.CaptureFixture[str]) -> None:
    _, secret = auth.create_key("alice")
    revoked, revoked_secret = auth.create_key("gone")
    auth.revoke_key(revoked.key_id)
    events = [
        rest({"Authorization": f"Bearer {secret}"}),
        rest({"x-api-key": secret}),
        rest(query={"token": secret}),  # refused: a REST request's ?token= does not count
        connect(secret),
        connect(OPERATOR_KEY),
        rest({"Authorization": f"Bearer {revoked_secret}"}),
        rest({"Authorization": f"Bearer {OPERATOR_KEY}-wrong"}),
        rest({"Authorization": "Bearer agk_0123456789abcdef_unknown-secret"}),
    ]

    outcomes = [refused(event) for event in events]

    assert outcomes == [False, False, True, False, False, True, True, True]
    output = logged.getvalue() + "".join(capfd.readouterr())
    assert "refused" in output  # the refusals were logged, at least
    for value in (secret, revoked_secret, OPERATOR_KEY, "unknown-secret", secret.split("_", 2)[2]):
        assert value not in output
    assert '"key_presented": true' in output.replace('":true', '": true')
