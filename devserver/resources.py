"""The embedded moto server and the template's resources created on it."""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from .template import Template

LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_SESSION_TOKEN": "local"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_moto(port: int | None = None) -> str:
    """Starts moto in server mode and points every boto3 client of this process at it; returns its URL."""
    port = port or free_port()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's per-request access log
    ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False).start()
    url = f"http://127.0.0.1:{port}"
    os.environ.update({"AWS_ENDPOINT_URL": url, "MOTO_PORT": str(port), **LOCAL_CREDENTIALS})
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_REGION", os.environ["AWS_DEFAULT_REGION"])
    return url


def create_resources(template: Template) -> dict[str, str]:
    """Creates every table and bucket the template declares, from its own properties; returns logical -> local name."""
    created = {}
    for logical, props in template.of_type("AWS::DynamoDB::Table").items():
        created[logical] = create_table(template.physical_name(logical), props)
    for logical, props in template.of_type("AWS::S3::Bucket").items():
        created[logical] = create_bucket(template.physical_name(logical), props)
    return created


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
        s3.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": props["CorsConfiguration"]["CorsRules"]})
    return name
