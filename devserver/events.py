"""EventBridge for the dev server: every `EventBridgeRule` event in the template becomes a rule on moto's default
event bus with an SQS queue as its target, and a worker hands each message to the function's handler, the way
EventBridge invokes a function asynchronously (a failed invocation is retried, then dropped). Buckets with
EventBridge enabled send their object events to that bus (resources.create_bucket), so a presigned upload is
finalized when its object lands, as in AWS."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from typing import Any

import boto3

from .apigw import LambdaContext
from .gateway import Handler, load_handler
from .template import Route, Template

log = logging.getLogger("devserver.events")
_INTRINSICS = ("Ref", "Fn::GetAtt", "Fn::Sub")


@dataclass(frozen=True)
class EventRule:
    name: str  # <function><event>, the rule's and the queue's name
    function: str
    pattern: dict[str, Any]
    route: Route  # where the handler lives (load_handler's input)


def event_rules(template: Template) -> list[EventRule]:
    rules = []
    for function, props in template.of_type("AWS::Serverless::Function").items():
        for event_name, event in (props.get("Events") or {}).items():
            if event.get("Type") != "EventBridgeRule":
                continue
            route = Route(
                function=function,
                method="EVENT",
                path=event_name,
                code_uri=template.path.parent / props["CodeUri"],
                handler=props["Handler"],
            )
            pattern = _resolved(template, event["Properties"]["Pattern"])
            rules.append(EventRule(name=f"{function}{event_name}", function=function, pattern=pattern, route=route))
    return rules


def _resolved(template: Template, value: Any) -> Any:
    """The pattern with its !Ref / !GetAtt / !Sub replaced by local names."""
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)) in _INTRINSICS:
            return template.resolve(value)
        return {k: _resolved(template, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolved(template, v) for v in value]
    return value


class EventRouter:
    def __init__(self, template: Template, *, max_attempts: int = 5) -> None:
        self.rules = event_rules(template)
        self.handlers: dict[str, Handler] = {rule.name: load_handler(rule.route) for rule in self.rules}
        self.max_attempts = max_attempts
        self.queues: dict[str, str] = {}
        self._sqs: Any = None
        self._stop = threading.Event()

    def create(self) -> EventRouter:
        """The rules and their queues, on whatever AWS endpoint boto3 points at (the dev server's moto, a test's)."""
        self._sqs = sqs = boto3.client("sqs")  # one client for every worker: boto3 clients are thread-safe
        events = boto3.client("events")
        for rule in self.rules:
            url = sqs.create_queue(QueueName=rule.name, Attributes={"VisibilityTimeout": "2"})["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            events.put_rule(Name=rule.name, EventPattern=json.dumps(rule.pattern), State="ENABLED")
            events.put_targets(Rule=rule.name, Targets=[{"Id": "devserver", "Arn": arn}])
            self.queues[rule.name] = url
        return self

    def deliver(self, rule: EventRule, wait_s: int = 0) -> int:
        """Receives what is waiting for one rule and invokes its function with each event; returns how many."""
        sqs = self._sqs
        messages = sqs.receive_message(
            QueueUrl=self.queues[rule.name],
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait_s,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        ).get("Messages", [])
        for message in messages:
            attempt = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
            try:
                self.handlers[rule.name](json.loads(message["Body"]), LambdaContext(function_name=rule.function))
            except Exception:
                log.exception("%s failed (attempt %d of %d)", rule.function, attempt, self.max_attempts)
                if attempt < self.max_attempts:
                    continue  # visible again after the queue's visibility timeout: a retry
            sqs.delete_message(QueueUrl=self.queues[rule.name], ReceiptHandle=message["ReceiptHandle"])
        return len(messages)

    def drain(self) -> int:
        """Delivers everything waiting, now (tests call this instead of running the workers)."""
        total = 0
        for rule in self.rules:
            while delivered := self.deliver(rule):
                total += delivered
        return total

    def start(self) -> EventRouter:
        for rule in self.rules:
            threading.Thread(target=self._work, args=(rule,), name=f"events-{rule.name}", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _work(self, rule: EventRule) -> None:
        while not self._stop.is_set():
            try:
                self.deliver(rule, wait_s=1)
            except Exception:  # moto going away at shutdown, or a transient error: keep serving
                log.exception("event delivery for %s failed", rule.name)
                self._stop.wait(1)
