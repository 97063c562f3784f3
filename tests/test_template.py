"""deploy/template.yaml: cfn-lint (offline) and least-privilege IAM, read from the template itself."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline import Config
from pipeline.config import VARIABLES

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "template.yaml"


class _CloudFormationLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !GetAtt, !Sub ...) read as their long forms."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _tag)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return yaml.load(TEMPLATE.read_text(), Loader=_CloudFormationLoader)  # a SafeLoader


def test_cfn_lint_finds_nothing_not_even_informational(tmp_path):
    """Offline: cfn-lint validates SAM resources with its bundled schemas. A broken copy shows it really looks."""
    broken = tmp_path / "broken.yaml"
    broken.write_text(TEMPLATE.read_text().replace("Handler: handler.lambda_handler", "Handlr: handler.lambda_handler"))
    lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run(
        [str(lint), "--format", "json", "--include-checks", "I", "--", str(TEMPLATE), str(broken)],
        capture_output=True,
        text=True,
        check=False,
    )
    findings = json.loads(result.stdout)
    assert [f for f in findings if f["Filename"] != str(broken)] == []
    assert "E3002" in {f["Rule"]["Id"] for f in findings}, result.stdout + result.stderr


def _statements(policy_holder: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for policy in policy_holder.get("Policies", []) for s in policy["PolicyDocument"]["Statement"]]


def _grants(role: dict[str, Any]) -> set[tuple[str, str]]:
    """(action, resource) pairs a role allows; resources as written: 'Stream.Arn' or a !Sub text."""
    grants = set()
    for statement in _statements(role["Properties"]):
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for resource in resources:
            assert isinstance(resource, dict), f"{resource!r} is not a reference to a resource of this template"
            name = ".".join(resource["Fn::GetAtt"]) if "Fn::GetAtt" in resource else resource["Fn::Sub"]
            grants |= {(action, name) for action in actions}
    return grants


def test_iam_names_only_this_stacks_stream_function_bucket_and_log_groups(template):
    resources = template["Resources"]
    roles = {name: r for name, r in resources.items() if r["Type"] == "AWS::IAM::Role"}
    assert set(roles) == {"FunctionRole", "DeliveryRole", "BackfillRole"}
    assert not [r for r in resources.values() if r["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")]
    assert not [r for r in roles.values() if "ManagedPolicyArns" in r["Properties"]]
    function = resources["Function"]["Properties"]
    assert function["Role"] == {"Fn::GetAtt": ["FunctionRole", "Arn"]}
    assert "Policies" not in function  # SAM would make a role of its own (with broader log rights)

    assert _grants(roles["FunctionRole"]) == {
        ("logs:CreateLogStream", "FunctionLogGroup.Arn"),
        ("logs:PutLogEvents", "FunctionLogGroup.Arn"),
        ("kinesis:PutRecords", "Stream.Arn"),
    }
    assert _grants(roles["DeliveryRole"]) == {
        *((f"kinesis:{a}", "Stream.Arn") for a in ("DescribeStream", "GetShardIterator", "GetRecords", "ListShards")),
        ("lambda:InvokeFunction", "Function.Arn"),
        ("lambda:GetFunctionConfiguration", "Function.Arn"),
        *((f"s3:{a}", "Bucket.Arn") for a in ("GetBucketLocation", "ListBucket", "ListBucketMultipartUploads")),
        *(
            (f"s3:{a}", prefix)
            for a in ("AbortMultipartUpload", "GetObject", "PutObject")
            for prefix in ("${Bucket.Arn}/${DataPrefix}*", "${Bucket.Arn}/processing-failed/*")
        ),
        ("logs:PutLogEvents", "DeliveryLogGroup.Arn"),
    }


def test_roles_trust_one_service_each(template):
    resources = template["Resources"]
    for role, service in (("FunctionRole", "lambda.amazonaws.com"), ("DeliveryRole", "firehose.amazonaws.com")):
        (trust,) = resources[role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Principal"] == {"Service": service} and trust["Action"] == "sts:AssumeRole"
    (firehose,) = resources["DeliveryRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert firehose["Condition"] == {"StringEquals": {"sts:ExternalId": {"Ref": "AWS::AccountId"}}}


def test_bucket_encrypted_private_and_tls_only(template):
    bucket = template["Resources"]["Bucket"]["Properties"]
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    (deny,) = template["Resources"]["BucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_function_configured_by_parameters_for_every_pipeline_variable(template):
    variables = template["Resources"]["Function"]["Properties"]["Environment"]["Variables"]
    assert set(variables) == set(VARIABLES)
    parameters = template["Parameters"]
    defaults = {}
    for variable, value in variables.items():
        defaults[variable] = str(parameters[value["Ref"]]["Default"])
    config = Config.from_env(defaults)  # the defaults make a working function
    assert [c.name for c in config.columns] == ["event", "id", "at"]


def test_delivery_stream_wiring(template):
    resources = template["Resources"]
    delivery = resources["DeliveryStream"]["Properties"]
    assert delivery["KinesisStreamSourceConfiguration"]["KinesisStreamARN"] == {"Fn::GetAtt": ["Stream", "Arn"]}
    assert resources["Table"]["Properties"]["KinesisStreamSpecification"]["StreamArn"] == {
        "Fn::GetAtt": ["Stream", "Arn"]
    }
    s3 = delivery["ExtendedS3DestinationConfiguration"]
    assert s3["ErrorOutputPrefix"].startswith("processing-failed/")
    assert s3["Prefix"] == {"Fn::Sub": "${DataPrefix}${PartitionPrefix}"}
    (processor,) = s3["ProcessingConfiguration"]["Processors"]
    parameters = {p["ParameterName"]: p["ParameterValue"] for p in processor["Parameters"]}
    assert parameters["LambdaArn"] == {"Fn::GetAtt": ["Function", "Arn"]}
    assert parameters["BufferSizeInMBs"] == {"Ref": "ProcessorBufferSizeMB"}
    assert parameters["BufferIntervalInSeconds"] == {"Ref": "ProcessorBufferIntervalSeconds"}
    # dynamic partitioning is on exactly when the function computes partition keys
    assert template["Conditions"]["Partitioned"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "PartitionKeys"}, ""]}]}
    assert s3["DynamicPartitioningConfiguration"]["Fn::If"][0] == "Partitioned"
    environment = resources["Function"]["Properties"]["Environment"]["Variables"]
    assert environment["PIPELINE_PARTITION_KEYS"] == {"Ref": "PartitionKeys"}


def test_log_groups_have_retention(template):
    groups = [r for r in template["Resources"].values() if r["Type"] == "AWS::Logs::LogGroup"]
    assert len(groups) == 2
    assert all(g["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"} for g in groups)
    function = template["Resources"]["Function"]["Properties"]
    assert function["LoggingConfig"]["LogGroup"] == {"Ref": "FunctionLogGroup"}


def test_backfill_glue_job_is_optional_least_privilege_and_configured_like_the_function(template):
    """The Glue job (and its role) exist only with BackfillExportBucket; it runs deploy/backfill_job.py."""
    import importlib.util

    resources = template["Resources"]
    assert template["Conditions"]["Backfill"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "BackfillExportBucket"}, ""]}]}
    assert template["Parameters"]["BackfillExportBucket"]["Default"] == ""
    job, role = resources["BackfillJob"], resources["BackfillRole"]
    assert job["Condition"] == role["Condition"] == "Backfill"
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "glue.amazonaws.com"} and trust["Action"] == "sts:AssumeRole"
    assert "ManagedPolicyArns" not in role["Properties"]
    assert _grants(role) == {
        ("s3:ListBucket", "arn:${AWS::Partition}:s3:::${BackfillExportBucket}"),
        ("s3:GetObject", "arn:${AWS::Partition}:s3:::${BackfillExportBucket}/${BackfillExportPrefix}*"),
        ("s3:GetObject", "${Bucket.Arn}/backfill-code/*"),
        ("s3:PutObject", "${Bucket.Arn}/${DataPrefix}*"),
        ("s3:PutObject", "${Bucket.Arn}/processing-failed/*"),
        *(
            (f"logs:{a}", "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws-glue/*")
            for a in ("CreateLogGroup", "CreateLogStream", "PutLogEvents")
        ),
    }
    properties = job["Properties"]
    assert properties["GlueVersion"] == "5.0" and properties["Role"] == {"Fn::GetAtt": ["BackfillRole", "Arn"]}
    assert properties["Command"]["ScriptLocation"] == {"Fn::Sub": "s3://${Bucket}/backfill-code/backfill_job.py"}
    arguments = properties["DefaultArguments"]
    variables = {k[2:]: v for k, v in arguments.items() if k[2:] in VARIABLES}
    function = template["Resources"]["Function"]["Properties"]["Environment"]["Variables"]
    for name, value in variables.items():  # the function's parameters, or none when they are empty
        assert value == function[name] or value["Fn::If"][1] == function[name], name
    # deploy/backfill_job.py reads the job's arguments (with Glue's own among them) into the backfill command
    spec = importlib.util.spec_from_file_location("backfill_job", ROOT / "deploy" / "backfill_job.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    parameters = template["Parameters"]
    argv = ["--JOB_ID", "j_1", "--export", "s3://exports/AWSDynamoDB/0123-ab/", "--to", "s3://lake/", "--gzip", "true"]
    argv += [
        arg
        for name, value in variables.items()
        if "Ref" in value
        for arg in (f"--{name}", parameters[value["Ref"]]["Default"])
    ]
    command, env = module.job_arguments(argv)
    assert command[:6] == ["backfill", "s3://exports/AWSDynamoDB/0123-ab/", "--to", "s3://lake/", "--engine", "spark"]
    assert "--gzip" in command
    assert Config.from_env(env).columns is not None
