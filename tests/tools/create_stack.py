"""Creates a CloudFormation stack from a template on the AWS endpoint in AWS_ENDPOINT_URL (an
emulator), waits until it is created and prints its outputs as one JSON object. Parameters come
as NAME=VALUE arguments (`_resources`, `_task_definition` and `_role_policies` are added); the values VPC and SUBNET are replaced by a VPC and a subnet made for
the stack. State machines are made runnable on moto (see make_executable). Exit 2 with the stack's events when it does not reach CREATE_COMPLETE.

Usage: python3 create_stack.py TEMPLATE STACK_NAME [NAME=VALUE ...]
"""
import ast
import json
import os
import sys
import time
import urllib.request

import boto3

REGION = "us-east-1"


def document(policy):
    """A policy document as a dict: moto keeps one made by CloudFormation as Python's text of it."""
    if isinstance(policy, str):
        try:
            return json.loads(policy)
        except ValueError:
            return ast.literal_eval(policy)
    return policy


def main() -> int:
    template, stack, *pairs = sys.argv[1:]
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    made = {"VPC": vpc, "SUBNET": subnet}
    parameters = []
    for pair in pairs:
        name, value = pair.split("=", 1)
        parameters.append({"ParameterKey": name, "ParameterValue": made.get(value, value)})
    cfn = boto3.client("cloudformation", region_name=REGION)
    with open(template, encoding="utf-8") as f:
        body = f.read()
    cfn.create_stack(
        StackName=stack,
        TemplateBody=body,
        Parameters=parameters,
        Capabilities=["CAPABILITY_IAM"],
    )
    for _ in range(300):
        status = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        if not status["StackStatus"].endswith("_IN_PROGRESS"):
            break
        time.sleep(0.2)
    if status["StackStatus"] != "CREATE_COMPLETE":
        events = cfn.describe_stack_events(StackName=stack)["StackEvents"]
        print(status["StackStatus"], json.dumps(events, default=str), file=sys.stderr)
        return 2
    outputs = {o["OutputKey"]: o["OutputValue"] for o in status.get("Outputs", [])}
    resources = cfn.list_stack_resources(StackName=stack)["StackResourceSummaries"]
    outputs["_resources"] = {r["LogicalResourceId"]: r["ResourceType"] for r in resources}
    for r in resources:
        if r["ResourceType"] == "AWS::StepFunctions::StateMachine":
            make_executable(r["PhysicalResourceId"])
    ecs = boto3.client("ecs", region_name=REGION)
    for r in resources:
        if r["ResourceType"] == "AWS::ECS::TaskDefinition":
            described = ecs.describe_task_definition(taskDefinition=r["PhysicalResourceId"])
            outputs["_task_definition"] = described["taskDefinition"]
    # Inline policies of the stack's roles, as IAM holds them after CloudFormation's functions.
    iam = boto3.client("iam", region_name=REGION)
    outputs["_role_policies"] = {
        r["LogicalResourceId"]: {
            name: document(iam.get_role_policy(RoleName=r["PhysicalResourceId"], PolicyName=name)["PolicyDocument"])
            for name in iam.list_role_policies(RoleName=r["PhysicalResourceId"])["PolicyNames"]
        }
        for r in resources if r["ResourceType"] == "AWS::IAM::Role"
    }
    print(json.dumps(outputs))
    return 0


def moto_executes_state_machines(on: bool) -> None:
    body = json.dumps({"stepfunctions": {"execute_state_machine": on}}).encode()
    url = os.environ["AWS_ENDPOINT_URL"] + "/moto-api/config"
    urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST")).read()


def make_executable(arn: str) -> None:
    """moto's CloudFormation creates state machines in its backend that does not run them; copy
    this one, under the same ARN, into the backend that does (the test's moto runs executions)."""
    sfn = boto3.client("stepfunctions", region_name=REGION)
    moto_executes_state_machines(False)
    try:
        machine = sfn.describe_state_machine(stateMachineArn=arn)
    finally:
        moto_executes_state_machines(True)
    sfn.create_state_machine(
        name=machine["name"], definition=machine["definition"], roleArn=machine["roleArn"]
    )


if __name__ == "__main__":
    sys.exit(main())
