"""The embedded moto server and the template's resources created on it."""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

import boto3
from moto import mock_aws
from moto.core.config import default_user_config
from moto.server import ThreadedMotoServer

from .moto_patches import patch_moto
from .template import LOCAL_ACCOUNT, Template

LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_SESSION_TOKEN": "local"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_moto(port: int | None = None) -> str:
    """Starts moto, in this process and in server mode on one state; returns the server's URL.

    The functions' AWS calls reach moto's backends in this process, without an HTTP hop (mock_aws); S3 alone is
    addressed at the server, whose URL is the one presigned URLs carry and browsers use. Other tools (the AWS CLI,
    a browser) reach every service at the server."""
    port = port or free_port()
    patch_moto()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's per-request access log
    default_user_config["stepfunctions"] = {"execute_state_machine": True}  # run executions, don't just record
    ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False).start()
    url = f"http://127.0.0.1:{port}"
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.update({"AWS_ENDPOINT_URL_S3": url, "MOTO_PORT": str(port), **LOCAL_CREDENTIALS})
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_REGION", os.environ["AWS_DEFAULT_REGION"])
    in_process = mock_aws(config={"core": {"reset_boto3_session": False, "mock_credentials": False}})
    in_process.start(reset=False)  # the server's state is the one state
    return url


def create_resources(template: Template) -> dict[str, str]:
    """Creates every table and bucket the template declares, from its own properties; returns logical -> local name."""
    created = {}
    for logical, props in template.of_type("AWS::DynamoDB::Table").items():
        created[logical] = create_table(template.physical_name(logical), props)
    for logical, props in template.of_type("AWS::S3::Bucket").items():
        created[logical] = create_bucket(template.physical_name(logical), props)
    for logical, props in template.of_type("AWS::Serverless::StateMachine").items():
        created[logical] = create_state_machine(template, logical, props)
    return created


def state_machine_definition(template: Template, props: dict[str, Any], **overrides: Any) -> str:
    """The definition file with its DefinitionSubstitutions made (as Step Functions makes them), `overrides` first."""
    text = (template.path.parent / props["DefinitionUri"]).read_text()
    values = {key: template.resolve(value) for key, value in (props.get("DefinitionSubstitutions") or {}).items()}
    for key, value in (values | overrides).items():
        text = text.replace("${" + key + "}", str(value))
    return text


def create_state_machine(template: Template, logical: str, props: dict[str, Any]) -> str:
    name = template.physical_name(logical)
    boto3.client("stepfunctions").create_state_machine(
        name=name,
        definition=state_machine_definition(template, props),
        roleArn=f"arn:aws:iam::{LOCAL_ACCOUNT}:role/{name}",
        type=props.get("Type", "STANDARD"),
    )
    return name


def create_table(name: str, props: dict[str, Any]) -> str:
    ddb = boto3.client("dynamodb")
    request: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    for indexes in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if props.get(indexes):
            request[indexes] = props[indexes]
    ddb.create_table(**request)
    ttl = props.get("TimeToLiveSpecification")
    if ttl:
        ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
    return name


def create_bucket(name: str, props: dict[str, Any]) -> str:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=name)
    if props.get("BucketEncryption"):
        # CloudFormation's shape differs from the API's by one key name.
        rules = [
            {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
            for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        ]
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    if props.get("PublicAccessBlockConfiguration"):
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"])
    if props.get("CorsConfiguration"):
        # CloudFormation says ExposedHeaders and MaxAge where the API says ExposeHeaders and MaxAgeSeconds.
        renamed = {"ExposedHeaders": "ExposeHeaders", "MaxAge": "MaxAgeSeconds"}
        rules = [{renamed.get(k, k): v for k, v in rule.items()} for rule in props["CorsConfiguration"]["CorsRules"]]
        s3.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": rules})
    if ((props.get("NotificationConfiguration") or {}).get("EventBridgeConfiguration") or {}).get("EventBridgeEnabled"):
        # Object events go to moto's EventBridge, where devserver.events routes them to the template's rules.
        s3.put_bucket_notification_configuration(
            Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}}
        )
    return name
