"""Reads template.yaml, the single source of truth for routes, resources, environment and gateway responses."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
LOCAL_ACCOUNT = "123456789012"  # moto's default account
PSEUDO = {
    "AWS::Region": lambda: os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
    "AWS::AccountId": lambda: LOCAL_ACCOUNT,
    "AWS::Partition": lambda: "aws",
    "AWS::URLSuffix": lambda: "amazonaws.com",
    "AWS::StackName": lambda: "local",
}


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags (!Ref, !Sub, !GetAtt, ...) turned into their long forms."""


def _tag(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix in ("Ref", "Condition"):  # the two long forms without "Fn::"
        return {suffix: value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _tag)


@dataclass(frozen=True)
class Route:
    """One API event of one function, as API Gateway would route it."""

    function: str
    method: str  # upper case, or ANY
    path: str  # /ap/v1/agent/tasks/{task_id}
    code_uri: Path
    handler: str  # module.attribute, relative to code_uri
    open: bool = False  # `Auth: {Authorizer: NONE}`: no key asked, whatever the API's default authorizer

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        regex = re.sub(r"\{(\w+)\+\}", r"(?P<\1>.+)", self.path)
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", regex)
        return re.compile(f"^{regex}/?$")  # API Gateway's REST APIs route /a/ as /a (the function sees the slash)

    @property
    def specificity(self) -> tuple[int, int]:
        """API Gateway prefers literal segments over variables, and plain variables over greedy ones."""
        segments = self.path.strip("/").split("/")
        literal = sum(1 for s in segments if not s.startswith("{"))
        return (literal, -sum(1 for s in segments if s.endswith("+}")))


class Template:
    def __init__(self, path: Path = ROOT / "template.yaml") -> None:
        self.path = path
        self.doc: dict[str, Any] = yaml.load(path.read_text(), Loader=_CfnLoader)
        self.resources: dict[str, dict[str, Any]] = self.doc.get("Resources", {})

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {name: res.get("Properties") or {} for name, res in self.resources.items() if res.get("Type") == kind}

    def physical_name(self, logical_id: str) -> str:
        """The local name of a resource: its logical id (lower case for buckets, as S3 requires)."""
        kind = self.resources[logical_id]["Type"]
        return logical_id.lower() if kind == "AWS::S3::Bucket" else logical_id

    def global_function(self, key: str) -> Any:
        """A property every function gets from the template's Globals (unless it sets its own)."""
        return ((self.doc.get("Globals") or {}).get("Function") or {}).get(key)

    def arn(self, logical_id: str) -> str:
        """The ARN moto gives the resource (its default account, the configured region), for the kinds whose ARN
        other resources name: functions (Step Functions calls them by ARN) and state machines."""
        kind, name = self.resources[logical_id]["Type"], self.physical_name(logical_id)
        region = os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        if kind in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            return f"arn:aws:lambda:{region}:{LOCAL_ACCOUNT}:function:{name}"
        if kind in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine"):
            return f"arn:aws:states:{region}:{LOCAL_ACCOUNT}:stateMachine:{name}"
        return f"arn:aws:local:::{name}"

    def parameter_default(self, name: str) -> Any:
        return (self.doc.get("Parameters", {}).get(name) or {}).get("Default")

    def resolve(self, value: Any) -> Any:
        """Enough of CloudFormation's intrinsics for environment variables: Ref, GetAtt (names only) and Sub."""
        if not isinstance(value, dict):
            return value
        if "Ref" in value:
            ref = value["Ref"]
            if ref in PSEUDO:
                return PSEUDO[ref]()
            if ref in self.resources:
                if self.resources[ref]["Type"].endswith("::StateMachine"):  # Ref of a state machine is its ARN
                    return self.arn(ref)
                return self.physical_name(ref)
            default = self.parameter_default(ref)
            return None if default is None else str(default)
        if "Fn::GetAtt" in value:
            name, attr = value["Fn::GetAtt"]
            return self.arn(name) if attr == "Arn" else self.physical_name(name)
        if "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):

            def sub(m: re.Match[str]) -> str:
                key = m.group(1)
                if "." in key:
                    return str(self.resolve({"Fn::GetAtt": key.split(".", 1)}))
                return str(self.resolve({"Ref": key}) or "")

            return re.sub(r"\$\{([^}!]+)\}", sub, value["Fn::Sub"])
        return None

    def environment(self) -> dict[str, str]:
        """Every function's variables merged (one process serves them all), resolved to local names."""
        merged: dict[str, Any] = dict(
            (((self.doc.get("Globals") or {}).get("Function") or {}).get("Environment") or {}).get("Variables") or {}
        )
        for props in self.of_type("AWS::Serverless::Function").values():
            merged.update(((props.get("Environment") or {}).get("Variables")) or {})
        resolved = {key: self.resolve(value) for key, value in merged.items()}
        return {key: str(value) for key, value in resolved.items() if value is not None}

    def routes(self) -> list[Route]:
        out = []
        for name, props in self.of_type("AWS::Serverless::Function").items():
            for event in (props.get("Events") or {}).values():
                if event.get("Type") != "Api":
                    continue
                ep = event["Properties"]
                out.append(
                    Route(
                        function=name,
                        method=ep["Method"].upper(),
                        path=ep["Path"],
                        code_uri=ROOT / props["CodeUri"],
                        handler=props["Handler"],
                        open=(ep.get("Auth") or {}).get("Authorizer") == "NONE",
                    )
                )
        return sorted(out, key=lambda r: r.specificity, reverse=True)

    def authorizer_route(self) -> Route | None:
        """The function behind the APIs' Lambda authorizer (the REST API's Auth names it by its Arn)."""
        found = re.search(r'"(\w+)\.Arn"|\["(\w+)", "Arn"\]', json.dumps(self.api().get("Auth") or {}))
        name = found and (found.group(1) or found.group(2))
        function = self.of_type("AWS::Serverless::Function").get(name or "")
        if not name or function is None:
            return None
        return Route(name, "AUTHORIZER", "", ROOT / function["CodeUri"], function["Handler"])

    def api(self) -> dict[str, Any]:
        apis = self.of_type("AWS::Serverless::Api")
        return next(iter(apis.values())) if apis else {}

    def binary_media_types(self) -> list[str]:
        return [t.replace("~1", "/") for t in self.api().get("BinaryMediaTypes", [])]

    def cors_headers(self) -> dict[str, str]:
        """What API Gateway answers a CORS preflight with, from the API's `Cors` property."""
        cors = self.api().get("Cors") or {}
        names = {
            "AllowOrigin": "Access-Control-Allow-Origin",
            "AllowMethods": "Access-Control-Allow-Methods",
            "AllowHeaders": "Access-Control-Allow-Headers",
            "MaxAge": "Access-Control-Max-Age",
        }
        return {header: str(self.resolve(cors[key])).strip("'") for key, header in names.items() if key in cors}

    def waf_upload_limit(self) -> tuple[int, str, dict[str, str]] | None:
        """The web ACL's multipart size rule: (the limit in bytes, the body and headers it answers), read from its
        PayloadTooLarge response, which names the limit (the rule's own regex says the same in digits)."""
        for props in self.of_type("AWS::WAFv2::WebACL").values():
            body = ((props.get("CustomResponseBodies") or {}).get("PayloadTooLarge") or {}).get("Content")
            if not body:
                continue
            headers: dict[str, str] = {}
            for rule in props.get("Rules", []):
                response = ((rule.get("Action") or {}).get("Block") or {}).get("CustomResponse") or {}
                if response.get("CustomResponseBodyKey") == "PayloadTooLarge":
                    headers = {h["Name"]: str(self.resolve(h["Value"])) for h in response.get("ResponseHeaders", [])}
            return int(json.loads(body)["error"]["details"]["limit_bytes"]), body, headers
        return None

    def gateway_response(self, kind: str) -> tuple[int, str, dict[str, str]]:
        """(status, body template, headers) of one of the API's GatewayResponses."""
        response = (self.api().get("GatewayResponses") or {}).get(kind) or {}
        status = int(response.get("StatusCode", 500 if kind.endswith("5XX") else 400))
        body = (response.get("ResponseTemplates") or {}).get("application/json", f'{{"message": "{kind}"}}')
        params = (response.get("ResponseParameters") or {}).get("Headers") or {}
        headers = {k: str(self.resolve(v)).strip("'") for k, v in params.items()}
        return status, body, headers
