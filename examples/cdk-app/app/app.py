"""The attini-runner cdk recipe: a bucket for reports and a queue for work, in one stack.

The stack name comes from the context value `stackName` (default `reports-cdk`). The legacy
synthesizer keeps the template inline, so the app deploys without `cdk bootstrap`.
"""

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs

app = cdk.App(default_stack_synthesizer=cdk.LegacyStackSynthesizer())
stack = cdk.Stack(
    app,
    "Reports",
    stack_name=app.node.try_get_context("stackName") or "reports-cdk",
    analytics_reporting=False,
)
reports = s3.Bucket(stack, "Reports")
work = sqs.Queue(stack, "Work", retention_period=cdk.Duration.days(1))
cdk.CfnOutput(stack, "ReportsBucket", value=reports.bucket_name)
cdk.CfnOutput(stack, "WorkQueueUrl", value=work.queue_url)
app.synth()
