"""Keys in template.yaml (issue 21): one Lambda REQUEST authorizer in front of both APIs, every route behind it but
the documentation's, its IAM exactly one GetItem and one secret, 401/403 in the spec's envelope, per-key WAF limits,
and a model budget `sam deploy --guided` asks for. The transformed checks run SAM's own translator (the tools venv)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from devserver.template import Template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = Template()
RESOURCES = TEMPLATE.resources
PARAMETERS: dict[str, dict[str, Any]] = TEMPLATE.doc["Parameters"]
TOOLS_PYTHON = ROOT / ".venv-tools" / "bin" / "python"

# The routes a browser loads before it has a key (TasksFunction): the only ones without the authorizer.
OPEN_ROUTES = {
    ("/ap/v1/agent/openapi.json", "get"),
    ("/ap/v1/agent/docs", "get"),
    ("/ap/v1/agent/docs/assets/{name}", "get"),
    # the web console's page and assets: a browser loads them before it has a key
    ("/console", "get"),
    ("/console/{file}", "get"),
    ("/console/assets/{name}", "get"),
}

_TRANSFORM = """
import json, os, sys
sys.path.insert(0, "scripts")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
from pathlib import Path
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse
from lint_transformed import _NoManagedPolicies, packaged
print(json.dumps(transform(packaged(yaml_parse(Path("template.yaml").read_text())), {}, _NoManagedPolicies())))
"""


@pytest.fixture(scope="module")
def transformed() -> dict[str, Any]:
    """The template as SAM hands it to CloudFormation, default parameters (what `sam deploy` would create)."""
    if not TOOLS_PYTHON.exists():
        pytest.skip("the tools venv (make template-lint) holds SAM's translator")
    out = subprocess.run([str(TOOLS_PYTHON), "-c", _TRANSFORM], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def test_every_rest_route_but_the_documentation_asks_the_authorizer(transformed: dict[str, Any]) -> None:
    body = transformed["Resources"]["AgentApi"]["Properties"]["Body"]
    authorizer = body["securityDefinitions"]["KeyAuthorizer"]["x-amazon-apigateway-authorizer"]

    # A REQUEST authorizer on the function; no identity source (a key may come in either header, or ?token=), so
    # no gateway cache: the function keeps what it checked for AUTH_CACHE_TTL_S.
    assert authorizer["type"] == "request" and authorizer["authorizerResultTtlInSeconds"] == 0
    assert "identitySource" not in authorizer
    function_arn = {"Fn::GetAtt": ["AuthorizerFunction", "Arn"]}
    assert authorizer["authorizerUri"]["Fn::Sub"][1] == {"__FunctionArn__": function_arn}
    methods = {(path, m): spec.get("security") for path, ms in body["paths"].items() for m, spec in ms.items()}
    open_methods = {pm for pm, security in methods.items() if security == [{"NONE": []}]}
    keyed = {pm for pm, security in methods.items() if security == [{"KeyAuthorizer": []}]}
    preflights = {pm for pm in methods if pm[1] == "options"}  # API Gateway's CORS answers, no key in a preflight
    assert open_methods == OPEN_ROUTES
    assert keyed | open_methods | preflights == set(methods) and all(methods[p] is None for p in preflights)
    keys, key = "/ap/v1/agent/keys", "/ap/v1/agent/keys/{key_id}"
    any_method = "x-amazon-apigateway-any-method"
    assert {(keys, "post"), (keys, "get"), (key, "delete"), (keys, any_method), (key, any_method)} <= keyed
    # API Gateway may call the function for this API's authorizers only
    permission = transformed["Resources"]["AgentApiKeyAuthorizerAuthorizerPermission"]["Properties"]
    assert permission["FunctionName"] == {"Fn::GetAtt": ["AuthorizerFunction", "Arn"]}
    assert permission["SourceArn"]["Fn::Sub"][0].endswith("${__ApiId__}/authorizers/*")
    assert permission["SourceArn"]["Fn::Sub"][1] == {"__ApiId__": {"Ref": "AgentApi"}}


def test_the_websocket_handshake_asks_the_same_function(transformed: dict[str, Any]) -> None:
    (name, authorizer), = _of_type(transformed, "AWS::ApiGatewayV2::Authorizer").items()  # fmt: skip
    props = authorizer["Properties"]
    connect = transformed["Resources"]["WebSocketConnectRoute"]["Properties"]
    permission = transformed["Resources"]["WebSocketAuthorizerPermission"]["Properties"]

    assert props["AuthorizerType"] == "REQUEST" and props["ApiId"] == {"Ref": "WebSocketApi"}
    assert props["AuthorizerUri"]["Fn::Sub"].endswith("/functions/${AuthorizerFunction.Arn}/invocations")
    # A browser's WebSocket can send nothing but the URL: ?token= is the one source declared
    assert props["IdentitySource"] == ["route.request.querystring.token"]
    assert connect["AuthorizationType"] == {"Fn::If": ["Anonymous", "NONE", "CUSTOM"]}
    assert connect["AuthorizerId"]["Fn::If"][2] == {"Ref": name}
    assert "ApiKeyRequired" not in connect
    assert permission["FunctionName"] == {"Fn::GetAtt": ["AuthorizerFunction", "Arn"]}
    assert permission["SourceArn"]["Fn::Sub"].endswith(":${WebSocketApi}/authorizers/${WebSocketAuthorizer}")
    # ...and no API Gateway API keys are left
    kinds = {r["Type"] for r in transformed["Resources"].values()}
    assert not kinds & {"AWS::ApiGateway::ApiKey", "AWS::ApiGateway::UsagePlanKey"}


def test_anonymous_access_is_a_choice_the_template_makes_in_one_place() -> None:
    parameter = PARAMETERS["AllowAnonymousAccess"]
    conditions = TEMPLATE.doc["Conditions"]
    env = TEMPLATE.global_function("Environment")["Variables"]
    address_rule = next(r for r in RESOURCES["RateLimitAcl"]["Properties"]["Rules"] if r["Name"] == "PerAddressRate")

    assert parameter["Default"] == "false" and parameter["AllowedValues"] == ["true", "false"]
    assert "Not recommended" in parameter["Description"]
    assert "ApiKeyRequired" not in PARAMETERS and "UseApiKey" not in conditions
    assert conditions["Anonymous"] == {"Fn::Equals": [{"Ref": "AllowAnonymousAccess"}, "true"]}
    assert env["AUTH"] == {"Fn::If": ["Anonymous", "open", "keys"]}  # every function
    # With anonymous access the handshake has no authorizer (there is none to call) ...
    assert RESOURCES["WebSocketAuthorizer"]["Condition"] == "KeysRequired"
    assert RESOURCES["WebSocketAuthorizerPermission"]["Condition"] == "KeysRequired"
    # ... and the address is the client
    limit = address_rule["Statement"]["RateBasedStatement"]["Limit"]
    assert limit == {"Fn::If": ["Anonymous", {"Ref": "RateLimitPerMinute"}, {"Ref": "RateLimitPerAddressPerMinute"}]}


def test_the_authorizer_may_read_one_item_kind_and_one_secret() -> None:
    props = TEMPLATE.of_type("AWS::Serverless::Function")["AuthorizerFunction"]
    (policy,) = props["Policies"]
    secret = RESOURCES["AdminApiKeySecret"]["Properties"]

    assert props["CodeUri"] == "functions/authorizer/" and props["Handler"] == "app.handler"
    assert policy["Statement"] == [
        {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": {"Fn::GetAtt": ["AgentTable", "Arn"]}},
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": {"Ref": "AdminApiKeySecret"}},
    ]
    assert props["Environment"]["Variables"] == {
        "ADMIN_API_KEY_SECRET": {"Ref": "AdminApiKeySecret"},
        "AUTH_CACHE_TTL_S": "30",
    }
    assert props["LoggingConfig"]["LogGroup"] == {"Ref": "AuthorizerLogGroup"}
    assert RESOURCES["AuthorizerLogGroup"]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    # The whole SecretString is the key: no template, letters and digits
    assert secret["GenerateSecretString"] == {"PasswordLength": 48, "ExcludePunctuation": True}
    assert "${AWS::StackName}" in secret["Name"]["Fn::Sub"] and "${Stage}" in secret["Name"]["Fn::Sub"]
    output = TEMPLATE.doc["Outputs"]["AdminApiKeySecretArn"]
    assert output["Value"] == {"Ref": "AdminApiKeySecret"}
    assert "get-secret-value" in output["Description"] and "--query SecretString --output text" in output["Description"]
    assert "ApiKeyId" not in TEMPLATE.doc["Outputs"]


@pytest.mark.parametrize(
    ("kind", "status", "code"), [("UNAUTHORIZED", 401, "UNAUTHORIZED"), ("ACCESS_DENIED", 403, "FORBIDDEN")]
)
def test_refusals_are_the_specs_envelope(kind: str, status: int, code: str) -> None:
    got_status, body, headers = TEMPLATE.gateway_response(kind)
    # what API Gateway writes: $context.* substituted
    envelope = json.loads(re.sub(r"\$context\.[A-Za-z.]+", "c6af9ac6-7b61-11e6-9a41-93e8deadbeef", body))

    assert got_status == status and headers["Access-Control-Allow-Origin"] == "*"
    assert envelope["success"] is False and envelope["error"]["code"] == code
    assert envelope["message"] == envelope["error"]["message"]
    assert envelope["error"]["details"]["request_id"] == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    if kind == "UNAUTHORIZED":
        assert envelope["message"] == "A valid API key is required"
        assert envelope["error"]["details"]["suggestion"] == (
            "Send Authorization: Bearer <key> (or x-api-key: <key>; ?token=<key> on a WebSocket)"
        )
    assert "INVALID_API_KEY" not in (TEMPLATE.api().get("GatewayResponses") or {})


def test_browsers_may_send_the_authorization_header() -> None:
    assert "Authorization" in TEMPLATE.cors_headers()["Access-Control-Allow-Headers"].split(",")


def test_the_waf_counts_per_key_wherever_the_key_is_sent() -> None:
    rules = RESOURCES["RateLimitAcl"]["Properties"]["Rules"]
    rate = {r["Name"]: r for r in rules if "RateBasedStatement" in r["Statement"]}
    by_key = {}
    for name, rule in rate.items():
        statement = rule["Statement"]["RateBasedStatement"]
        assert statement["EvaluationWindowSec"] == 60
        assert rule["Action"]["Block"]["CustomResponse"]["ResponseCode"] == 429
        assert rule["Action"]["Block"]["CustomResponse"]["CustomResponseBodyKey"] == "RateLimited"
        if statement["AggregateKeyType"] == "CUSTOM_KEYS":
            assert statement["Limit"] == {"Ref": "RateLimitPerMinute"}
            ((place, key),) = statement["CustomKeys"][0].items()
            by_key[(place, key["Name"])] = name

    assert set(by_key) == {("Header", "authorization"), ("Header", "x-api-key"), ("QueryArgument", "token")}
    assert rate["PerAddressRate"]["Statement"]["RateBasedStatement"]["AggregateKeyType"] == "IP"
    assert len({r["Priority"] for r in rules}) == len(rules)
    assert PARAMETERS["RateLimitPerAddressPerMinute"]["Default"] >= 5 * PARAMETERS["RateLimitPerMinute"]["Default"]


@pytest.mark.parametrize("value, accepted", [("50", True), ("12.5", True), ("0.5", True), ("5", True),
                                             ("", False), ("0", False), ("0.0", False), ("-3", False),
                                             ("abc", False), ("1e3", False), ("$5", False)])  # fmt: skip
def test_the_model_budget_is_asked_for_and_must_be_a_positive_amount(value: str, accepted: bool) -> None:
    budget = PARAMETERS["OpenAIBudgetUsd"]

    assert "Default" not in budget and budget["ConstraintDescription"]
    # CloudFormation matches AllowedPattern against the whole value
    assert bool(re.fullmatch(budget["AllowedPattern"], value)) is accepted
    samconfig = (ROOT / "samconfig.toml").read_text()
    dev = samconfig.split("[default.deploy.parameters]")[1].split("[")[0]
    assert re.search(r"OpenAIBudgetUsd=\d", dev)
