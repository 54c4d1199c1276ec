"""What makes a first deploy work in a fresh account, and a stack lose nothing and cost nothing idle (issue 24),
read from template.yaml item by item. The deploy itself is rehearsed in test_deploy_rehearsal.py."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from devserver.template import Template

TEMPLATE = Template()
RESOURCES = TEMPLATE.resources
PARAMETERS: dict[str, dict[str, Any]] = TEMPLATE.doc["Parameters"]
CONDITIONS: dict[str, Any] = TEMPLATE.doc["Conditions"]
FUNCTIONS = TEMPLATE.of_type("AWS::Serverless::Function")
ASYNC_EVENTS = {"EventBridgeRule", "CloudWatchEvent", "S3", "SNS", "Schedule", "ScheduleV2"}


def accepts(parameter: str, value: str) -> bool:
    """Whether CloudFormation would take `value` for the parameter (its AllowedPattern, matched whole)."""
    return re.fullmatch(PARAMETERS[parameter]["AllowedPattern"], value) is not None


def test_the_api_stage_waits_for_the_accounts_cloudwatch_role_which_outlives_the_stack() -> None:
    assert RESOURCES["AgentApi"]["DependsOn"] == "ApiGatewayAccount"
    for name in ("ApiGatewayAccount", "ApiGatewayLoggingRole"):
        assert RESOURCES[name]["DeletionPolicy"] == RESOURCES[name]["UpdateReplacePolicy"] == "Retain", name
    assert "RoleName" not in RESOURCES["ApiGatewayLoggingRole"]["Properties"]  # two stacks, two roles


@pytest.mark.parametrize(
    ("function", "parameter"), [("StepsFunction", "StepsConcurrency"), ("SandboxFunction", "SandboxConcurrency")]
)
def test_reserved_concurrency_is_none_unless_asked_for(function: str, parameter: str) -> None:
    condition = f"Has{parameter}"
    assert FUNCTIONS[function]["ReservedConcurrentExecutions"] == {
        "Fn::If": [condition, {"Ref": parameter}, {"Ref": "AWS::NoValue"}]
    }
    assert CONDITIONS[condition] == {"Fn::Not": [{"Fn::Equals": [{"Ref": parameter}, ""]}]}
    assert PARAMETERS[parameter]["Default"] == ""
    assert accepts(parameter, "") and accepts(parameter, "20")
    assert not accepts(parameter, "0") and not accepts(parameter, "ten") and not accepts(parameter, "-1")


def test_the_sandbox_subnets_are_in_zones_given_by_id() -> None:
    assert "GetAZs" not in json.dumps(RESOURCES)
    zones = [
        RESOURCES[s["Ref"]]["Properties"]["AvailabilityZoneId"]
        for s in FUNCTIONS["SandboxFunction"]["VpcConfig"]["SubnetIds"]
    ]
    assert zones == [{"Ref": "SandboxZoneIdA"}, {"Ref": "SandboxZoneIdB"}]
    assert (PARAMETERS["SandboxZoneIdA"]["Default"], PARAMETERS["SandboxZoneIdB"]["Default"]) == (
        "use1-az1",
        "use1-az2",
    )
    assert accepts("SandboxZoneIdA", "euw1-az3") and not accepts("SandboxZoneIdA", "us-east-1a")


@pytest.mark.parametrize(
    ("parameter", "good", "bad"),
    [
        ("OpenAIApiKeyParameterName", ["", "agent-api/openai-api-key", "key"], ["/agent-api/key", "a//b", "a b"]),
        ("OpenAIBudgetUsd", ["50", "12.5", "0.5"], ["$50", "0", "", "50 USD", "-5"]),
        ("OpenAIBaseUrl", ["", "https://api.example.com/v1"], ["api.example.com", "https://a b"]),
        ("OpenAIModel", ["gpt-4o-mini", "meta/llama-3.1:8b"], ["", "gpt 4", "a'b"]),
        (
            "CorsAllowOrigin",
            ["*", "https://app.example", "http://localhost:5173"],
            ["https://a.example/path", "'*'", "a,b"],
        ),
    ],
)
def test_free_text_parameters_are_checked_before_anything_is_made(
    parameter: str, good: list[str], bad: list[str]
) -> None:
    assert all(accepts(parameter, v) for v in good), parameter
    assert not any(accepts(parameter, v) for v in bad), [v for v in bad if accepts(parameter, v)]


def test_the_key_parameter_name_and_the_code_agree_on_the_leading_slash() -> None:
    for function in ("StepsFunction", "RunnerFunction"):
        variable = FUNCTIONS[function]["Environment"]["Variables"]["OPENAI_API_KEY_PARAMETER"]
        assert variable == {"Fn::If": ["HasOpenAIKeyParameter", {"Fn::Sub": "/${OpenAIApiKeyParameterName}"}, ""]}


def test_every_function_aws_invokes_asynchronously_sends_its_failures_to_one_alarmed_queue() -> None:
    asynchronous = {
        name
        for name, props in FUNCTIONS.items()
        if any(e.get("Type") in ASYNC_EVENTS for e in (props.get("Events") or {}).values())
    }
    # ...and the ws function, which invokes itself asynchronously (a new watcher's first message)
    assert asynchronous | {"WsFunction"} == {
        "RunEventsFunction",
        "UploadFinalizerFunction",
        "ReclaimerFunction",
        "WsFunction",
    }
    for name in asynchronous | {"WsFunction"}:
        config = FUNCTIONS[name]["EventInvokeConfig"]
        assert config["MaximumRetryAttempts"] == 2
        assert config["DestinationConfig"]["OnFailure"] == {
            "Type": "SQS",
            "Destination": {"Fn::GetAtt": ["AsyncFailureQueue", "Arn"]},
        }, name
    queue = RESOURCES["AsyncFailureQueue"]["Properties"]
    assert queue == {"SqsManagedSseEnabled": True, "MessageRetentionPeriod": 1209600}  # encrypted, 14 days
    alarm = RESOURCES["AsyncFailuresAlarm"]["Properties"]
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["AsyncFailureQueue", "QueueName"]}}]


def test_metric_names_are_the_stacks_and_the_table_is_protected() -> None:
    acl = RESOURCES["RateLimitAcl"]["Properties"]
    names = [acl["VisibilityConfig"]["MetricName"]] + [r["VisibilityConfig"]["MetricName"] for r in acl["Rules"]]
    assert all(n["Fn::Sub"].startswith("${AWS::StackName}-") for n in names)
    assert len({n["Fn::Sub"] for n in names}) == len(names)
    namespace = TEMPLATE.global_function("Environment")["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
    assert namespace == {"Fn::Sub": "AgentProtocol/${AWS::StackName}"}
    assert RESOURCES["AgentTable"]["Properties"]["DeletionProtectionEnabled"] is True


def test_the_waf_has_managed_rules_that_spare_uploads_and_logs_without_keys() -> None:
    acl = RESOURCES["RateLimitAcl"]["Properties"]
    managed = {
        r["Statement"]["ManagedRuleGroupStatement"]["Name"]: r
        for r in acl["Rules"]
        if "ManagedRuleGroupStatement" in r["Statement"]
    }
    assert set(managed) == {"AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet"}
    overrides = managed["AWSManagedRulesCommonRuleSet"]["Statement"]["ManagedRuleGroupStatement"]["RuleActionOverrides"]
    assert overrides == [{"Name": "SizeRestrictions_BODY", "ActionToUse": {"Count": {}}}]
    priorities = [r["Priority"] for r in acl["Rules"]]
    assert len(set(priorities)) == len(priorities)
    logging = RESOURCES["WafLogging"]["Properties"]
    group = RESOURCES["WafLogGroup"]["Properties"]
    assert group["LogGroupName"] == {"Fn::Sub": "aws-waf-logs-${AWS::StackName}"}
    assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert logging["LogDestinationConfigs"][0]["Fn::Sub"].endswith(":log-group:${WafLogGroup}")  # no ":*"
    redacted = logging["RedactedFields"]
    assert {"SingleHeader": {"Name": "authorization"}} in redacted and {"QueryString": {}} in redacted
    assert {"SingleHeader": {"Name": "x-api-key"}} in redacted


def test_what_costs_by_the_month_is_off_for_dev_and_on_for_prod() -> None:
    monthly = {
        name
        for name, r in RESOURCES.items()
        if r["Type"] in ("AWS::WAFv2::WebACL", "AWS::CloudWatch::Dashboard", "AWS::CloudWatch::Alarm", "AWS::KMS::Key")
    }
    for name in monthly | {"AlarmTopic", "WafLogging", "WafLogGroup", "RateLimitAclAssociation"}:
        assert RESOURCES[name].get("Condition"), name
    for parameter in ("EnableWaf", "EnableDashboard", "EnableAlarms"):
        assert PARAMETERS[parameter]["Default"] == "auto"
    on = {
        "Fn::Or": [
            {"Fn::Equals": [{"Ref": "EnableWaf"}, "true"]},
            {"Fn::And": [{"Fn::Equals": [{"Ref": "EnableWaf"}, "auto"]}, {"Condition": "IsProd"}]},
        ]
    }
    assert CONDITIONS["WafOn"] == on
    assert CONDITIONS["IsProd"] == {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}


def test_functions_and_the_layer_run_python_313() -> None:
    assert TEMPLATE.global_function("Runtime") == "python3.13"
    assert not [name for name, props in FUNCTIONS.items() if "Runtime" in props]
    layer = RESOURCES["CommonLayer"]
    assert (
        layer["Properties"]["CompatibleRuntimes"] == ["python3.13"] and layer["Metadata"]["BuildMethod"] == "python3.13"
    )


def _rule_holds(expression: Any, parameters: dict[str, str]) -> bool:
    """CloudFormation's rule functions, as far as the template's rules use them."""
    (name, args), *_ = expression.items()
    value = {"Ref": lambda: parameters[args]}.get(name)
    if value is not None:
        return value()  # type: ignore[no-any-return]
    operands = [_rule_holds(a, parameters) if isinstance(a, dict) else a for a in args]
    return {
        "Fn::Or": lambda: any(operands),
        "Fn::Not": lambda: not operands[0],
        "Fn::Equals": lambda: operands[0] == operands[1],
        "Fn::Contains": lambda: operands[1] in operands[0],
    }[name]()


def test_the_task_list_shards_are_a_deploy_setting_whose_index_shards_divide_the_count_shards() -> None:
    # Given the two parameters the functions read as TASK_COUNT_SHARDS and TASK_INDEX_SHARDS, one shard by default
    env = TEMPLATE.doc["Globals"]["Function"]["Environment"]["Variables"]
    assert env["TASK_COUNT_SHARDS"] == {"Ref": "TaskCountShards"}
    assert env["TASK_INDEX_SHARDS"] == {"Ref": "TaskIndexShards"}
    assert PARAMETERS["TaskCountShards"]["Default"] == PARAMETERS["TaskIndexShards"]["Default"] == "1"
    values = PARAMETERS["TaskCountShards"]["AllowedValues"]
    assert values == PARAMETERS["TaskIndexShards"]["AllowedValues"]
    # Then the template's rules take a pair exactly when the index's shards divide the counters'
    assertions = TEMPLATE.doc["Rules"]["TaskIndexShardsDivideTaskCountShards"]["Assertions"]
    for count in values:
        for index in values:
            pair = {"TaskCountShards": count, "TaskIndexShards": index}
            taken = all(_rule_holds(a["Assert"], pair) for a in assertions)
            assert taken == (int(count) % int(index) == 0), pair
