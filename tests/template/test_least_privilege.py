"""IAM in template.yaml: every function's statements name only the actions it uses, on its own resources, and the
sandbox function has nothing but its log and no way out. The static checks read the template; the tour records the
AWS calls each function really makes through its routes (botocore's own events, nothing stubbed) and compares."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

from agent_core import aws, orchestration
from agent_core.config import get_settings
from devserver.apigw import LambdaContext
from devserver.gateway import load_handler
from devserver.template import Route, Template
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = Template()
FUNCTIONS = TEMPLATE.of_type("AWS::Serverless::Function")
CUSTOM_ROLE_FUNCTIONS = {name for name, props in FUNCTIONS.items() if "Role" in props}


def statements(function: str) -> list[dict[str, Any]]:
    """The function's inline policy statements, both branches of an !If, no pseudo NoValue."""
    out: list[dict[str, Any]] = []
    for policy in FUNCTIONS[function].get("Policies") or []:
        assert isinstance(policy, dict) and "Statement" in policy, (
            f"{function}: a policy template ({policy}) is too broad"
        )
        for statement in policy["Statement"]:
            if "Fn::If" in statement:
                out += [s for s in statement["Fn::If"][1:] if isinstance(s, dict) and "Effect" in s]
            else:
                out.append(statement)
    return out


def actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def role_statements(role: str) -> list[dict[str, Any]]:
    props = TEMPLATE.resources[role]["Properties"]
    return [s for p in props.get("Policies", []) for s in p["PolicyDocument"]["Statement"]]


@pytest.mark.parametrize("function", sorted(set(FUNCTIONS) - CUSTOM_ROLE_FUNCTIONS))
def test_no_function_has_wildcard_actions_scans_or_table_administration(function: str) -> None:
    for statement in statements(function):
        for action in actions(statement):
            service, name = action.split(":")
            assert "*" not in action, (function, action)
            assert name not in ("Scan", "CreateTable", "DeleteTable", "UpdateTable", "DeleteBucket", "PutBucketPolicy")
            if action == "s3:ListBucket":  # listing only under the prefix the API writes
                assert statement["Resource"] == {"Fn::GetAtt": ["ArtifactBucket", "Arn"]}
                assert statement["Condition"] == {"StringLike": {"s3:prefix": "tasks/*"}}
            elif service == "s3":  # objects under the prefix the API writes, never the bucket itself
                assert statement["Resource"] == {"Fn::Sub": "${ArtifactBucket.Arn}/tasks/*"}, (function, statement)
            if service == "dynamodb":  # the table, and its indexes only for the functions that query them
                assert statement["Resource"] in (
                    {"Fn::GetAtt": ["AgentTable", "Arn"]},
                    [{"Fn::GetAtt": ["AgentTable", "Arn"]}, {"Fn::Sub": "${AgentTable.Arn}/index/*"}],
                )
            if service == "execute-api":  # posting to the WebSocket API's connections, nothing else
                assert actions(statement) == ["execute-api:ManageConnections"]
                assert statement["Resource"]["Fn::Sub"].endswith("${WebSocketApi}/${Stage}/POST/@connections/*")
            if service == "states":  # the run state machine and its executions, nothing else
                assert statement["Resource"] == {"Ref": "AgentRunStateMachine"} or statement["Resource"][
                    "Fn::Sub"
                ].endswith(":execution:${AgentRunStateMachine.Name}:*"), (function, statement)


def test_only_the_functions_that_take_steps_may_invoke_the_sandbox_and_nothing_else() -> None:
    invokers = {
        name: s["Resource"]
        for name in set(FUNCTIONS) - CUSTOM_ROLE_FUNCTIONS
        for s in statements(name)
        if any(a.startswith("lambda:") for a in actions(s))
    }
    machine = TEMPLATE.resources["AgentRunStateMachine"]["Properties"]

    sandbox = {"Fn::GetAtt": ["SandboxFunction", "Arn"]}
    itself = {"Fn::Sub": "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${AWS::StackName}-ws"}
    assert invokers == {"StepsFunction": sandbox, "RunnerFunction": sandbox, "WsFunction": itself}
    assert FUNCTIONS["WsFunction"]["FunctionName"] == {"Fn::Sub": "${AWS::StackName}-ws"}  # (its async welcome)
    for name in ("StepsFunction", "RunnerFunction"):
        assert FUNCTIONS[name]["Environment"]["Variables"]["SANDBOX_FUNCTION_NAME"] == {"Ref": "SandboxFunction"}
    # ...and the state machine only its runner
    assert machine["Policies"] == [
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "lambda:InvokeFunction",
                    "Resource": {"Fn::GetAtt": ["RunnerFunction", "Arn"]},
                }
            ],
        }
    ]


def test_the_sandbox_function_has_its_log_and_nothing_else() -> None:
    props = FUNCTIONS["SandboxFunction"]
    role = props["Role"]["Fn::GetAtt"][0]
    allowed = [s for s in role_statements(role) if s["Effect"] == "Allow"]
    denied = [s for s in role_statements(role) if s["Effect"] == "Deny"]
    log_statement, eni_statement = allowed

    assert "Policies" not in props and "Environment" not in props  # no policy templates, no variables of its own
    assert actions(log_statement) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert log_statement["Resource"] == {"Fn::GetAtt": ["SandboxLogGroup", "Arn"]}
    # Lambda needs the network-interface actions to attach the function to its subnets; the code never gets them.
    assert set(actions(eni_statement)) == {
        "ec2:CreateNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSubnets",
        "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses",
        "ec2:UnassignPrivateIpAddresses",
    }
    assert denied == [{**eni_statement, "Sid": denied[0]["Sid"], "Effect": "Deny",
                       "Condition": {"Null": {"lambda:SourceFunctionArn": "false"}}}]  # fmt: skip
    assert props["ReservedConcurrentExecutions"] == {
        "Fn::If": ["HasSandboxConcurrency", {"Ref": "SandboxConcurrency"}, {"Ref": "AWS::NoValue"}]
    }
    assert props["Tracing"] == "PassThrough"
    assert TEMPLATE.resources["SandboxLogGroup"]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_the_sandbox_function_has_no_way_out() -> None:
    vpc_config = FUNCTIONS["SandboxFunction"]["VpcConfig"]
    group = TEMPLATE.resources["SandboxSecurityGroup"]["Properties"]
    vpc = TEMPLATE.resources["SandboxVpc"]["Properties"]
    kinds = {r["Type"] for r in TEMPLATE.resources.values()}

    assert vpc_config["SecurityGroupIds"] == [{"Ref": "SandboxSecurityGroup"}]
    assert "SecurityGroupIngress" not in group
    # One rule, to loopback: EC2 would add allow-all egress to a group created with none.
    assert group["SecurityGroupEgress"] == [
        {"IpProtocol": "-1", "CidrIp": "127.0.0.1/32", "Description": group["SecurityGroupEgress"][0]["Description"]}
    ]
    assert vpc["EnableDnsSupport"] is False  # the VPC resolver would answer queries: a channel out
    ways_out = {
        "InternetGateway",
        "NatGateway",
        "VPCEndpoint",
        "EgressOnlyInternetGateway",
        "Route",
        "VPCGatewayAttachment",
    }
    assert not kinds & {f"AWS::EC2::{kind}" for kind in ways_out}
    for subnet in vpc_config["SubnetIds"]:
        assert TEMPLATE.resources[subnet["Ref"]]["Properties"]["MapPublicIpOnLaunch"] is False


def test_deployed_stages_are_bounded_logged_and_keyed_by_default() -> None:
    api = TEMPLATE.api()
    access_log = api["AccessLogSetting"]["DestinationArn"]["Fn::GetAtt"][0]
    samconfig = (ROOT / "samconfig.toml").read_text()

    assert TEMPLATE.resources[access_log]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    access_format = json.loads(api["AccessLogSetting"]["Format"].replace("\n", ""))
    assert access_format["requestId"] == "$context.requestId"
    # Lambda's request id for the invocation: the functions log it as request_id
    assert access_format["functionRequestId"] == "$context.integration.requestId"
    # The caller by its key's id (the authorizer's principal), never the key: nothing that carries headers or the
    # query string (?token=) is logged.
    assert access_format["client"] == "$context.authorizer.principalId"
    assert not [v for v in access_format.values() if re.search("header|querystring|apikey", v, re.IGNORECASE)]
    assert FUNCTIONS["StepsFunction"]["ReservedConcurrentExecutions"] == {
        "Fn::If": ["HasStepsConcurrency", {"Ref": "StepsConcurrency"}, {"Ref": "AWS::NoValue"}]
    }
    # Keys on unless a deployment says otherwise, and no profile says otherwise
    assert TEMPLATE.doc["Parameters"]["AllowAnonymousAccess"]["Default"] == "false"
    assert "ApiKeyRequired" not in samconfig and "AllowAnonymousAccess=true" not in samconfig
    prod = samconfig.split("[prod.deploy.parameters]")[1]
    assert "Stage=prod" in prod
    # The WebSocket API asks the same authorizer at its handshake; no stage of it logs requests (the URL has ?token=)
    connect = TEMPLATE.resources["WebSocketConnectRoute"]["Properties"]
    assert connect["AuthorizationType"] == {"Fn::If": ["Anonymous", "NONE", "CUSTOM"]}
    assert connect["AuthorizerId"] == {"Fn::If": ["Anonymous", {"Ref": "AWS::NoValue"}, {"Ref": "WebSocketAuthorizer"}]}
    assert "AccessLogSettings" not in TEMPLATE.resources["WebSocketStage"]["Properties"]


# What each AWS call needs in IAM. A transaction needs the actions of its parts; HeadObject is GetObject's.
_S3_ACTIONS = {"HeadObject": "s3:GetObject", "DeleteObjects": "s3:DeleteObject", "ListObjectsV2": "s3:ListBucket"}
_TRANSACT_PARTS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}
_SERVICE_PREFIX = {
    "lambda": "lambda",
    "dynamodb": "dynamodb",
    "s3": "s3",
    "ssm": "ssm",
    "stepfunctions": "states",
    "apigatewaymanagementapi": "execute-api",
    "secretsmanager": "secretsmanager",
}


def _needed(service: str, operation: str, params: dict[str, Any]) -> set[str]:
    if service == "dynamodb" and operation == "TransactWriteItems":
        return {f"dynamodb:{_TRANSACT_PARTS[k]}" for item in params["TransactItems"] for k in item}
    if service == "s3":
        return {_S3_ACTIONS.get(operation, f"s3:{operation}")}
    if service == "lambda" and operation == "Invoke":
        return {"lambda:InvokeFunction"}
    if service == "apigatewaymanagementapi":
        return {"execute-api:ManageConnections"}
    return {f"{_SERVICE_PREFIX[service]}:{operation}"}


@pytest.fixture
def recorded(api: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, set[str]]]:
    """function -> the IAM actions its calls needed, for every client made from now on, whatever session made it
    (Powertools makes its own): each new client gets an observer on its events; the calls themselves are untouched."""
    used: dict[str, set[str]] = defaultdict(set)

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        if api.function is None:
            return  # the test's own setup
        service = model.service_model.service_name
        # botocore builds a presigned POST's URL as a CreateBucket request: what it grants is PutObject.
        operation = "PutObject" if (service, model.name) == ("s3", "CreateBucket") else model.name
        used[api.function] |= _needed(service, operation, params)

    create_client = botocore.session.Session.create_client

    def observed(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = create_client(self, *args, **kwargs)
        client.meta.events.register("before-parameter-build.*.*", record)  # real calls and presigned URLs
        return client

    monkeypatch.setattr(botocore.session.Session, "create_client", observed)
    aws.reset()
    DEFAULT_PROVIDERS.clear()  # Powertools keeps its SSM client (and what it read) from earlier tests
    yield used
    DEFAULT_PROVIDERS.clear()


def _function_route(function: str) -> Route:
    props = FUNCTIONS[function]
    return Route(function, "EVENT", function, ROOT / props["CodeUri"], props["Handler"])


def _multipart(path: str, content: bytes) -> tuple[bytes, dict[str, str]]:
    body = (
        b'--b\r\nContent-Disposition: form-data; name="relative_path"\r\n\r\n' + path.encode() + b"\r\n"
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="sales.csv"\r\n\r\n' + content + b"\r\n--b--\r\n"
    )
    return body, {"content-type": "multipart/form-data; boundary=b"}


def test_every_function_uses_exactly_the_actions_its_policy_names(
    api: Any, recorded: dict[str, set[str]], model_api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tasks, artifacts (both upload paths, both download forms), offline steps through run_python, the finalizer
    task = api("POST", "/tasks", json_body={"input": "Summarise"}, headers={"Idempotency-Key": "k1"}).json()["task_id"]
    api("GET", "/tasks", query={"status": "created", "created_after": "2020-01-01T00:00:00Z"})
    _watch(api, task, "watcher-1")  # a WebSocket watcher: every status change below is pushed to it
    body, headers = _multipart("data/sales.csv", b"month,amount\nJan,10\nFeb,32\n")
    artifact = api("POST", f"/tasks/{task}/artifacts", body=body, headers=headers).json()["artifact_id"]
    api("GET", f"/tasks/{task}/artifacts")
    api("GET", f"/tasks/{task}/artifacts/{artifact}")
    api("GET", f"/tasks/{task}/artifacts/{artifact}", query={"redirect": "false"})
    ticket = api("POST", f"/tasks/{task}/artifacts/uploads", json_body={"file_name": "b.csv", "file_size": 3}).json()
    aws.client("s3").put_object(Bucket=get_settings().bucket_name, Key=ticket["upload"]["fields"]["key"], Body=b"a,b")
    api("POST", f"/tasks/{task}/artifacts/uploads/{ticket['artifact_id']}/complete")
    # ...the model path with its key in SSM (deployed), one run_python call through the sandbox function
    from tests.fake_model import completion, tool_call

    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("OPENAI_API_KEY_PARAMETER", "/agent/key")
    boto3.client("ssm").put_parameter(Name="/agent/key", Value="sk-test", Type="SecureString")
    get_settings.cache_clear()
    model_api.side_effect = [completion(tool_call("run_python", {"code": "open('output/r.md','w').write('x')"}))]
    api("POST", f"/tasks/{task}/steps", headers={"Idempotency-Key": "k2"})
    step = api("GET", f"/tasks/{task}/steps").json()["steps"][0]["step_id"]
    api("GET", f"/tasks/{task}/steps/{step}")
    api("DELETE", f"/tasks/{task}/artifacts/{artifact}")
    _runs_tour(api, task, model_api)
    _authorizer_tour(api, monkeypatch)
    # ...and the finalizer, for uploads nobody completed: one as declared, one of another size (deleted)
    for name, content in (("c.csv", b"a,b"), ("d.csv", b"a,b,c,d")):
        late = api("POST", f"/tasks/{task}/artifacts/uploads", json_body={"file_name": name, "file_size": 3}).json()
        key = late["upload"]["fields"]["key"]
        aws.client("s3").put_object(Bucket=get_settings().bucket_name, Key=key, Body=content)
        event = json.loads((ROOT / "events" / "eventbridge" / "s3_object_created.json").read_text())
        event["detail"]["bucket"]["name"], event["detail"]["object"]["key"] = get_settings().bucket_name, key
        api.function = "UploadFinalizerFunction"
        load_handler(_function_route("UploadFinalizerFunction"))(event, LambdaContext())
        api.function = None
    api("DELETE", f"/tasks/{task}")

    for function, used in recorded.items():
        assert function in FUNCTIONS, (function, used)
        granted = {a for s in statements(function) for a in actions(s)}
        assert used <= granted, f"{function} calls what its policy does not allow: {used - granted}"
        assert granted <= used | _NOT_SEEN_HERE.get(function, set()), f"{function} is granted unused {granted - used}"
    assert set(recorded) == set(FUNCTIONS) - {"SandboxFunction", "ConsoleFunction"}  # which make no AWS call at all
    assert not statements("ConsoleFunction") and not statements("SandboxFunction")
    assert recorded["AgentFunction"] >= {"states:StartExecution", "states:StopExecution"}


def _authorizer_tour(api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The authorizer, as API Gateway calls it: a client's key in a REST request's header (its item), the operator's
    key in a WebSocket handshake's ?token= (the secret), and a key nobody issued."""
    secret = boto3.client("secretsmanager").create_secret(Name="admin-api-key", SecretString="operator-key-0123")
    monkeypatch.delenv("ADMIN_API_KEY", raising=False)
    monkeypatch.setenv("ADMIN_API_KEY_SECRET", secret["ARN"])
    get_settings.cache_clear()
    # The operator's routes (the API is open here: its caller is the operator)
    client_key = api("POST", "/keys", json_body={"name": "tour"}).json()["api_key"]
    gone = api("POST", "/keys", json_body={"name": "gone"}).json()["key_id"]
    api("DELETE", f"/keys/{gone}")
    api("GET", "/keys")
    monkeypatch.setenv("AUTH", "keys")  # as deployed: a key nobody issued is refused (an open stage lets it by)
    get_settings.cache_clear()
    rest = json.loads((ROOT / "events" / "authorizer" / "rest_request.json").read_text())
    rest["headers"] = {**rest["headers"], "Authorization": f"Bearer {client_key}"}
    ws = json.loads((ROOT / "events" / "authorizer" / "websocket_connect.json").read_text())
    ws["queryStringParameters"] = {**ws["queryStringParameters"], "token": "operator-key-0123"}

    allowed = _call("AuthorizerFunction", api, rest)
    operator = _call("AuthorizerFunction", api, ws)
    rest["headers"]["Authorization"] = "Bearer agk_0123456789abcdef_nobody"
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        _call("AuthorizerFunction", api, rest)

    monkeypatch.setenv("AUTH", "open")
    get_settings.cache_clear()
    assert allowed["context"]["role"] == "client" and operator["context"]["role"] == "operator"
    assert allowed["policyDocument"]["Statement"][0]["Resource"].endswith(":abcdef123/dev/*")
    assert operator["policyDocument"]["Statement"][0]["Resource"].endswith(":wsapi12345/dev/*")


def _runs_tour(api: Any, task: str, model_api: Any) -> None:
    """Runs: the API's routes, a step of the runner, the end of a run. Executions are recorded, not run: the step
    one would take is taken here, where its calls are attributed to the runner."""
    from moto.core.config import default_user_config

    from devserver.resources import create_state_machine
    from tests.fake_model import completion, tool_call

    default_user_config["stepfunctions"]["execute_state_machine"] = False
    try:  # moto's other Step Functions backend, which records executions without running them
        machine = "AgentRunStateMachine"
        create_state_machine(TEMPLATE, machine, TEMPLATE.of_type("AWS::Serverless::StateMachine")[machine])
        run = api("POST", f"/tasks/{task}/run").json()
        api("GET", f"/tasks/{task}/run")
        api("GET", "/status")
        api("POST", "/restart")  # hands the run over to a new execution
        resumed = api("GET", f"/tasks/{task}/run").json()["run_id"]
        model_api.side_effect = [completion(tool_call("run_python", {"code": "open('output/s.md','w').write('x')"}))]
        state = {"task_id": task, "run_id": resumed, "max_steps": 5, "deadline": 2**31, "done": 1, "is_last": False}
        _call("RunnerFunction", api, state)
        ended = {"name": resumed, "status": "ABORTED", "input": json.dumps({"task_id": task})}
        _call("RunEventsFunction", api, {"detail": ended})
        # A run whose end event was lost (its execution stopped, nothing delivered): the reclaimer gives its slot back
        lost = api("POST", "/tasks", json_body={"input": "lost end"}).json()["task_id"]
        _watch(api, lost, "watcher-3")
        lost_run = api("POST", f"/tasks/{lost}/run").json()["run_id"]
        boto3.client("stepfunctions").stop_execution(executionArn=orchestration.execution_arn(lost_run))
        assert _call("ReclaimerFunction", api, {})["reclaimed"] == [lost_run]
        api("POST", f"/tasks/{task}/cancel")  # (no run any more: 400)
        assert run["run_id"] != resumed
        auto = api("POST", "/tasks", json_body={"input": "go", "additional_input": {"auto_run": True}}).json()
        _watch(api, auto["task_id"], "watcher-2")
        api("DELETE", f"/tasks/{auto['task_id']}")  # stops its run: pushed
        _call("WsFunction", api, _ws_event("$disconnect", "watcher-1"))
    finally:
        default_user_config["stepfunctions"]["execute_state_machine"] = True


def _ws_event(route_key: str, connection_id: str, query: dict[str, str] | None = None) -> dict[str, Any]:
    return {"requestContext": {"routeKey": route_key, "connectionId": connection_id}, "queryStringParameters": query}


def _watch(api: Any, task_id: str, connection_id: str) -> None:
    """A WebSocket watcher of the task, and its first message (sent by the ws function's async invocation)."""
    from devserver import lambdas

    _call("WsFunction", api, _ws_event("$connect", connection_id, {"task_id": task_id}), wait=lambdas.in_flight)


def _call(function: str, api: Any, event: dict[str, Any], wait: Any = None) -> Any:
    api.function = function
    try:
        answer = load_handler(_function_route(function))(event, LambdaContext(function_name=function))
        if wait is not None:  # what it started asynchronously is its own doing too
            wait_until(lambda: not wait(), what=f"{function}'s asynchronous work")
        return answer
    finally:
        api.function = None


# Granted for paths the tour above does not reach, each named with the path.
_NOT_SEEN_HERE = {
    # A client's own list (keys on: the tour's API is open) reads its tasks from their index places in one
    # BatchGetItem (storage/tasks.py, _read_page with an owner).
    "TasksFunction": {"dynamodb:BatchGetItem"},
    "ArtifactsFunction": set(),
    # Powertools idempotency deletes its record when the step it guards fails, so a retry may run it again. The
    # budget check reads the sharded counters (BatchGetItem) only when OPENAI_BUDGET_USD is set.
    "StepsFunction": {"dynamodb:DeleteItem", "dynamodb:BatchGetItem"},
    "RunnerFunction": {"dynamodb:DeleteItem", "dynamodb:BatchGetItem"},
}
