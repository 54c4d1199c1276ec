"""cfn-lint on the template after the SAM transform: catches what the plain lint cannot see in SAM resources
(bad !Ref targets inside generated resources, unsupported runtimes, malformed policy templates).

Usage: python scripts/lint_transformed.py template.yaml   (run with the tools venv, which has samtranslator)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

_URI_PROPERTIES = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
}


class _NoManagedPolicies:
    def get_policies(self) -> dict[str, str]:
        return {}


def packaged(template: dict) -> dict:
    """What `sam package` would hand CloudFormation: code as s3:// URIs, state machine definitions inlined."""
    for resource in template.get("Resources", {}).values():
        props = resource.get("Properties") or {}
        kind = resource.get("Type")
        key = _URI_PROPERTIES.get(kind)
        if key and isinstance(props.get(key), str):
            props[key] = "s3://packaged/" + props[key].strip("./").replace("/", "-")
        if kind == "AWS::Serverless::StateMachine" and isinstance(props.get("DefinitionUri"), str):
            props["Definition"] = yaml_parse(Path(props.pop("DefinitionUri")).read_text())
    return template


def main(path: str) -> int:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    output = transform(packaged(yaml_parse(Path(path).read_text())), {}, _NoManagedPolicies())
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as out:
        json.dump(output, out)
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(cfn_lint), out.name])
    os.unlink(out.name)
    print(f"cfn-lint after the SAM transform: {'ok' if result.returncode == 0 else 'FAILED'}")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "template.yaml"))
