"""Validates a rendered task definition against botocore's RegisterTaskDefinition request shape,
then registers it with the ECS of the AWS endpoint in AWS_ENDPOINT_URL and prints what ECS
stored, as JSON. Exit 2 with the validator's report when the shape does not hold.

Usage: python3 register_task_definition.py RENDERED.json
"""
import json
import sys

import boto3
import botocore.session
from botocore.validate import ParamValidator


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as f:
        params = json.load(f)
    model = botocore.session.get_session().get_service_model("ecs")
    shape = model.operation_model("RegisterTaskDefinition").input_shape
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        print(report.generate_report(), file=sys.stderr)
        return 2
    ecs = boto3.client("ecs", region_name="us-east-1")
    stored = ecs.register_task_definition(**params)["taskDefinition"]
    print(json.dumps(stored, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
