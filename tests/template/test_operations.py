"""Operations in template.yaml: the dashboard and the alarms read the metrics this code really emits (an EMF line
printed by a real step) and the resources of this stack; every alarm reaches an encrypted topic CloudWatch may use;
every function logs to a group with a retention period."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from devserver.template import Template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = Template()
RESOURCES = TEMPLATE.resources
PARAMETERS: dict[str, dict[str, Any]] = TEMPLATE.doc["Parameters"]
FUNCTIONS = TEMPLATE.of_type("AWS::Serverless::Function")
ALARMS = TEMPLATE.of_type("AWS::CloudWatch::Alarm")
PSEUDO = {"AWS::Region", "AWS::AccountId", "AWS::Partition", "AWS::StackName", "AWS::URLSuffix"}
SUB_REF = re.compile(r"\$\{([^}!][^}]*)\}")


def dead_letter_queues() -> set[str]:
    """The queues SAM creates for events with `DeadLetterConfig: {Type: SQS}`, named <Function><Event>Queue."""
    return {
        f"{function}{event}Queue"
        for function, props in FUNCTIONS.items()
        for event, spec in (props.get("Events") or {}).items()
        if (spec.get("Properties") or {}).get("DeadLetterConfig") == {"Type": "SQS"}
    }


STACK_NAMES = set(RESOURCES) | dead_letter_queues() | set(PARAMETERS) | PSEUDO


def sub_parts(value: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    sub = value["Fn::Sub"]
    return (sub, {}) if isinstance(sub, str) else (sub[0], sub[1])


def substitute(text: str, variables: dict[str, str]) -> str:
    """A Sub's text with each reference replaced: variables by their text, Number parameters by their default (they
    stand where JSON wants a number), anything else by its own name, which the tests then look up."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in variables or name.split(".")[0] in STACK_NAMES, f"${{{name}}} names nothing of this stack"
        if name in variables:
            return variables[name]
        if PARAMETERS.get(name, {}).get("Type") == "Number":
            return str(PARAMETERS[name]["Default"])
        if name in ("StepsConcurrency", "SandboxConcurrency"):  # numbers where set (only then named: a condition)
            return "10"
        return name

    return SUB_REF.sub(one, text)


def resolved(value: Any, conditions: dict[str, bool]) -> str:
    """A Sub or If (nested) as text, each If taken by `conditions`."""
    if isinstance(value, str):
        return value
    if "Fn::If" in value:
        condition, when_true, when_false = value["Fn::If"]
        return resolved(when_true if conditions[condition] else when_false, conditions)
    text, variables = sub_parts(value)
    return substitute(text, {name: resolved(v, conditions) for name, v in variables.items()})


def dashboard(*, budget: bool, alarms: bool = True, waf: bool = True, reserved: bool = True) -> dict[str, Any]:
    """The dashboard body as CloudFormation would hand it over: OpenAIBudgetUsd set or left empty, the alarms and
    the web ACL on or off, the reserved concurrencies set or empty."""
    conditions = {
        "HasBudget": budget,
        "AlarmsOn": alarms,
        "WafOn": waf,
        "SpendAlarmOn": budget and alarms,
        "WafAlarmsOn": waf and alarms,
        "HasStepsConcurrency": reserved,
        "HasSandboxConcurrency": reserved,
    }
    return json.loads(resolved(RESOURCES["OperationsDashboard"]["Properties"]["DashboardBody"], conditions))


def namespace_of(text: str) -> str:
    """A metric namespace as the functions of the local stack emit it (the template's is per stack)."""
    return text.strip('"').replace("AWS::StackName", "local")


def value_of(dimension_value: Any) -> str:
    """A dimension value in an alarm, as `substitute` writes it in the dashboard."""
    if isinstance(dimension_value, str):
        return dimension_value
    if "Ref" in dimension_value:
        return dimension_value["Ref"]
    if "Fn::GetAtt" in dimension_value:
        return ".".join(dimension_value["Fn::GetAtt"])
    return substitute(*sub_parts(dimension_value))


def dashboard_metrics(body: dict[str, Any]) -> list[tuple[str, str, dict[str, str]]]:
    """(namespace, metric name, dimensions) of every metric line of every metric widget."""
    out = []
    for widget in body["widgets"]:
        for line in widget["properties"].get("metrics", []):
            if isinstance(line[0], dict):  # an expression
                continue
            fields = [f for f in line if not isinstance(f, dict)]
            namespace, name, pairs = fields[0], fields[1], fields[2:]
            out.append((namespace, name, dict(zip(pairs[::2], pairs[1::2], strict=True))))
    return out


def dashboard_expressions(body: dict[str, Any]) -> list[str]:
    return [
        line[0]["expression"]
        for widget in body["widgets"]
        for line in widget["properties"].get("metrics", [])
        if isinstance(line[0], dict)
    ]


def alarm_metrics(props: dict[str, Any]) -> list[tuple[str, str, dict[str, str]]]:
    if "MetricName" in props:
        metrics = [props]
    else:
        metrics = [m["MetricStat"]["Metric"] for m in props["Metrics"] if "MetricStat" in m]
    return [
        (value_of(m["Namespace"]), m["MetricName"], {d["Name"]: value_of(d["Value"]) for d in m.get("Dimensions", [])})
        for m in metrics
    ]


# The names AWS publishes these under (a typo here would be a widget or an alarm that never gets data).
AWS_METRICS = {
    "AWS/Lambda": {"Errors", "Throttles", "ConcurrentExecutions"},
    "AWS/ApiGateway": {"Count", "4XXError", "5XXError", "Latency"},
    "AWS/States": {
        "ExecutionsStarted",
        "ExecutionsSucceeded",
        "ExecutionsFailed",
        "ExecutionsTimedOut",
        "ExecutionsAborted",
    },
    "AWS/WAFV2": {"BlockedRequests"},
    "AWS/DynamoDB": {"ReadThrottleEvents", "WriteThrottleEvents"},
    "AWS/SQS": {"ApproximateNumberOfMessagesVisible"},
}
# The rules' dead-letter queues and the queue of asynchronous invocations that failed after Lambda's retries.
QUEUES = {f"{q}.QueueName" for q in dead_letter_queues()} | {"AsyncFailureQueue.QueueName"}
ALL_METRICS = dashboard_metrics(dashboard(budget=True)) + [m for p in ALARMS.values() for m in alarm_metrics(p)]


@pytest.fixture
def emf_record(api, monkeypatch, capsys) -> dict[str, Any]:
    """The EMF line one real step prints (the offline model, through the steps function's handler)."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    task_id = api("POST", "/tasks", json_body={"input": "Summarise my files"}).json()["task_id"]
    assert api("POST", f"/tasks/{task_id}/steps").status == 200
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert len(records) == 1
    return records[0]


@pytest.mark.parametrize("budget", [True, False], ids=["with-budget", "without-budget"])
@pytest.mark.parametrize("alarms", [True, False], ids=["alarms", "no-alarms"])
@pytest.mark.parametrize("waf", [True, False], ids=["waf", "no-waf"])
@pytest.mark.parametrize("reserved", [True, False], ids=["reserved", "unreserved"])
def test_the_dashboard_is_json_that_names_only_this_stack(
    budget: bool, alarms: bool, waf: bool, reserved: bool
) -> None:
    body = dashboard(budget=budget, alarms=alarms, waf=waf, reserved=reserved)  # every ${...} checked on the way

    assert len(body["widgets"]) >= 10
    cost = next(w for w in body["widgets"] if "cost" in w["properties"].get("title", "").lower())
    assert len(cost["properties"]["annotations"]["horizontal"]) == (1 if budget else 0)
    concurrency = next(w for w in body["widgets"] if "concurrency" in w["properties"].get("title", "").lower())
    assert len(concurrency["properties"]["annotations"]["horizontal"]) == (2 if reserved else 0)
    assert any("WAF" in w["properties"].get("title", "") for w in body["widgets"]) == waf
    widgets = [w for w in body["widgets"] if w["type"] == "alarm"]
    assert len(widgets) == int(alarms)
    on = {"AlarmsOn": alarms, "SpendAlarmOn": alarms and budget, "WafAlarmsOn": alarms and waf}
    expected = {f"{name}.Arn" for name, props in ALARMS.items() if on[RESOURCES[name]["Condition"]]}
    assert {a for w in widgets for a in w["properties"]["alarms"]} == expected


def test_the_dashboard_and_the_spend_alarm_read_the_metrics_a_real_step_emits(emf_record: dict[str, Any]) -> None:
    # Given the metrics, namespace and dimension sets of the line a step printed
    emitted = emf_record["_aws"]["CloudWatchMetrics"][0]
    namespace, names = emitted["Namespace"], {m["Name"] for m in emitted["Metrics"]}
    assert namespace == "AgentProtocol/local"  # the stack's own (the local stack is "local")
    dimension_sets = [frozenset(d) for d in emitted["Dimensions"]]
    assert frozenset({"service"}) in dimension_sets  # all models in one series

    # Then every metric the dashboard and the alarms read there is one of them, under a full emitted dimension set
    ours = [m for m in ALL_METRICS if namespace_of(m[0]) == namespace]
    for _, name, dimensions in ours:
        assert name in names, name
        assert frozenset(dimensions) in dimension_sets, (name, dimensions)
        assert all(emf_record[key] == value for key, value in dimensions.items()), (name, dimensions)
    # and the by-model searches use an emitted schema and metric names
    for expression in dashboard_expressions(dashboard(budget=True)):
        if not expression.startswith("SEARCH"):
            continue
        match = re.match(r"SEARCH\('\{([^}]*)\} MetricName=\"(\w+)\"", expression)
        assert match, expression
        schema = match.group(1).split(",")
        if namespace_of(schema[0]) == namespace:
            assert frozenset(schema[1:]) in dimension_sets and match.group(2) in names, expression
    assert {"Steps", "StepErrors", "StepTokens", "StepCostUSD"} <= {name for _, name, _ in ours}
    assert [(n, d) for ns, n, d in alarm_metrics(ALARMS["SpendAlarm"]) if namespace_of(ns) == namespace] == [
        ("StepCostUSD", {"service": emf_record["service"]})
    ]


def test_aws_metrics_name_this_stacks_resources() -> None:
    acl = TEMPLATE.of_type("AWS::WAFv2::WebACL")["RateLimitAcl"]
    rule_metrics = {value_of(r["VisibilityConfig"]["MetricName"]) for r in acl["Rules"]}
    for namespace, name, dims in ALL_METRICS:
        ours = namespace.strip('"') == "AgentProtocol/AWS::StackName"
        assert ours or name in AWS_METRICS[namespace], (namespace, name)
        if namespace == "AWS/Lambda":
            assert set(dims) == {"FunctionName"} and dims["FunctionName"] in FUNCTIONS
        elif namespace == "AWS/ApiGateway":  # SAM names a REST API without a Name after the stack
            assert "Name" not in TEMPLATE.api() and dims == {"ApiName": "AWS::StackName", "Stage": "Stage"}
        elif namespace == "AWS/States":
            assert RESOURCES[dims["StateMachineArn"]]["Type"] == "AWS::Serverless::StateMachine"
        elif namespace == "AWS/WAFV2":
            assert dims["WebACL"] == value_of(acl["VisibilityConfig"]["MetricName"]) and dims["Region"] == "AWS::Region"
            assert dims["Rule"] in rule_metrics
        elif namespace == "AWS/DynamoDB":
            assert RESOURCES[dims["TableName"]]["Type"] == "AWS::DynamoDB::Table"
        elif namespace == "AWS/SQS":
            assert dims["QueueName"] in QUEUES

    # and the per-function widgets and per-rule widget leave nothing of the stack out
    board = dashboard_metrics(dashboard(budget=False))
    for metric in ("Errors", "Throttles", "ConcurrentExecutions"):
        assert {d["FunctionName"] for ns, n, d in board if n == metric} == set(FUNCTIONS), metric
    assert {d["Rule"] for ns, n, d in board if ns == "AWS/WAFV2"} == rule_metrics
    assert {d["QueueName"] for ns, n, d in board if ns == "AWS/SQS"} == QUEUES
    assert {n for ns, n, d in board if ns == "AWS/States"} >= {"ExecutionsFailed", "ExecutionsTimedOut"}


def test_the_alarms_watch_what_operations_needs() -> None:
    def metrics(alarm: str) -> list[tuple[str, str, dict[str, str]]]:
        return alarm_metrics(ALARMS[alarm])

    rate_rules = [
        value_of(r["VisibilityConfig"]["MetricName"])
        for r in TEMPLATE.of_type("AWS::WAFv2::WebACL")["RateLimitAcl"]["Rules"]
        if "RateBasedStatement" in r["Statement"]
    ]

    assert {n for _, n, _ in metrics("ServerErrorsAlarm")} == {"5XXError", "Count"}
    assert "/ requests" in ALARMS["ServerErrorsAlarm"]["Metrics"][-1]["Expression"]
    # every function's throttles but the authorizer's and the reclaimer's (an alarm reads at most 10 metrics): a
    # throttled authorizer answers 500, which the 5xx alarm counts; a throttled reclaimer runs again 5 minutes later
    throttled = {d["FunctionName"] for _, n, d in metrics("LambdaThrottlesAlarm") if n == "Throttles"}
    assert len(ALARMS["LambdaThrottlesAlarm"]["Metrics"]) <= 10
    # nor the console's (its page's files): a throttled one answers 5xx too
    assert throttled == set(FUNCTIONS) - {"AuthorizerFunction", "ReclaimerFunction", "ConsoleFunction"}
    throttles = ALARMS["LambdaThrottlesAlarm"]["Metrics"]
    assert all(f"FILL({m['Id']}, 0)" in throttles[-1]["Expression"] for m in throttles[:-1])  # all summed
    assert RESOURCES["SpendAlarm"]["Condition"] == "SpendAlarmOn"
    assert "${OpenAIBudgetUsd}" in ALARMS["SpendAlarm"]["Metrics"][-1]["Expression"]["Fn::Sub"]
    # every rate rule's blocks (per key, wherever sent, and per address), summed
    assert [d["Rule"] for _, _, d in metrics("RateLimitBlocksAlarm")] == rate_rules and len(rate_rules) == 4
    blocked = ALARMS["RateLimitBlocksAlarm"]["Metrics"]
    assert all(f"FILL({m['Id']}, 0)" in blocked[-1]["Expression"] for m in blocked[:-1])
    assert {n for _, n, _ in metrics("RunsFailingAlarm")} == {"ExecutionsFailed", "ExecutionsTimedOut"}
    dead_letters = {d["QueueName"] for p in ALARMS.values() for ns, _, d in alarm_metrics(p) if ns == "AWS/SQS"}
    assert dead_letters == QUEUES and len(dead_letters) == 3
    for props in ALARMS.values():
        threshold = props["Threshold"]
        if isinstance(threshold, dict):  # a parameter, with a default
            assert PARAMETERS[threshold["Ref"]]["Default"] is not None


def test_every_alarm_notifies_the_topic_and_chooses_what_missing_data_means() -> None:
    guide = (ROOT / "docs" / "operations.md").read_text()
    for name, props in ALARMS.items():
        assert props["AlarmActions"] == props["OKActions"] == [{"Ref": "AlarmTopic"}], name
        assert props["TreatMissingData"] in ("notBreaching", "ignore", "breaching"), name
        # the key's policy lets CloudWatch use it for alarms named <stack>-*
        alarm_name = props["AlarmName"]["Fn::Sub"]
        assert alarm_name.startswith("${AWS::StackName}-"), name
        assert alarm_name.removeprefix("${AWS::StackName}-") in guide, f"docs/operations.md does not explain {name}"


def test_the_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use() -> None:
    topic = RESOURCES["AlarmTopic"]["Properties"]
    key = RESOURCES[topic["KmsMasterKeyId"]["Fn::GetAtt"][0]]
    grants = [s for s in key["Properties"]["KeyPolicy"]["Statement"] if s["Principal"].get("Service")]
    subscription = RESOURCES["AlarmEmailSubscription"]

    assert key["Type"] == "AWS::KMS::Key" and key["Properties"]["EnableKeyRotation"] is True
    assert [g["Principal"]["Service"] for g in grants] == ["cloudwatch.amazonaws.com"]
    assert set(grants[0]["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    assert grants[0]["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Sub"].endswith(":alarm:${AWS::StackName}-*")
    assert subscription["Condition"] == "AlarmEmailOn" and subscription["Properties"]["Endpoint"] == {
        "Ref": "AlarmEmail"
    }
    assert TEMPLATE.doc["Conditions"]["HasAlarmEmail"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}
    assert PARAMETERS["AlarmEmail"]["Default"] == ""


def test_every_function_logs_to_its_own_group_with_a_retention_period() -> None:
    groups = {name: props["LoggingConfig"]["LogGroup"]["Ref"] for name, props in FUNCTIONS.items()}

    assert len(set(groups.values())) == len(FUNCTIONS)
    for function, group in groups.items():
        resource = RESOURCES[group]
        assert resource["Type"] == "AWS::Logs::LogGroup", function
        assert resource["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, function
    names = [RESOURCES[g]["Properties"]["LogGroupName"]["Fn::Sub"] for g in groups.values()]
    assert len(set(names)) == len(names) and all(n.startswith("/aws/lambda/${AWS::StackName}-") for n in names)


def test_the_error_query_reads_every_function_that_answers_the_api_or_runs_steps() -> None:
    api_functions = {
        name
        for name, props in FUNCTIONS.items()
        if any(e.get("Type") == "Api" for e in (props.get("Events") or {}).values())
    }
    widget = next(w for w in dashboard(budget=False)["widgets"] if "errors" in w["properties"]["title"].lower())
    sources = set(re.findall(r"SOURCE '(\w+)'", widget["properties"]["query"]))

    # The console's function serves files and logs no 'server error' (a crash is in the Lambda errors widget).
    served = api_functions - {"ConsoleFunction"} | {"RunnerFunction"}
    expected = {FUNCTIONS[f]["LoggingConfig"]["LogGroup"]["Ref"] for f in served}
    assert sources == expected
