"""The Lambda REQUEST authorizer in front of both APIs (the REST API and the WebSocket API's `$connect`): the key a
request presents becomes the caller the functions receive in `requestContext.authorizer` (`client_id`, `role`).
No key, an unknown or a revoked one: API Gateway answers 401 UNAUTHORIZED (its gateway response, in the spec's
envelope). The key itself is never logged."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from agent_core import auth

logger = Logger()


def _stage_arn(method_arn: str) -> str:
    """arn:aws:execute-api:<region>:<account>:<api>/<stage>/*: the answer may be cached for a key, so it allows
    every route of the stage, not just the one asked about."""
    api, _, rest = method_arn.partition("/")
    return f"{api}/{rest.partition('/')[0]}/*"


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    handshake = event.get("methodArn", "").endswith("/$connect")  # the WebSocket API's: a browser has only the URL
    key = auth.presented_key(event.get("headers"), event.get("queryStringParameters") if handshake else None)
    caller = auth.caller_of(key)
    if caller is None and not auth.required():  # a stage open to anyone (AllowAnonymousAccess): as the operator
        caller = auth.ANONYMOUS
    if caller is None:
        logger.info(
            "refused", extra={"key_presented": bool(key), "route": event.get("methodArn", "").split("/", 2)[-1]}
        )
        raise Exception("Unauthorized")  # API Gateway's contract: this exact message answers 401
    return {
        "principalId": caller.client_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": _stage_arn(event["methodArn"])}
            ],
        },
        "context": caller.context(),
    }
