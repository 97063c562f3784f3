"""deploy/template.yaml: cfn-lint (offline) and least-privilege IAM, read from the template itself."""

from __future__ import annotations

import json
import re
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
    assert set(roles) == {"FunctionRole", "DeliveryRole"}
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


def _environment(template: dict[str, Any], **chosen: str) -> dict[str, str]:
    """The function's variables for the parameters' defaults overridden by *chosen* (Ref, Sub and If resolved)."""
    values = {name: str(p["Default"]) for name, p in template["Parameters"].items()} | chosen
    to_iceberg = values["Destination"] == "Iceberg"

    def resolve(value: Any) -> str:
        if isinstance(value, str):
            return value
        if "Ref" in value:
            return values[value["Ref"]]
        if "Fn::Sub" in value:
            return re.sub(r"\$\{(\w+)\}", lambda m: values[m[1]], value["Fn::Sub"])
        condition, then, otherwise = value["Fn::If"]
        assert condition == "ToIceberg"
        return resolve(then if to_iceberg else otherwise)

    variables = template["Resources"]["Function"]["Properties"]["Environment"]["Variables"]
    return {name: resolve(value) for name, value in variables.items()}


def test_function_configured_by_parameters_for_every_pipeline_variable(template):
    variables = template["Resources"]["Function"]["Properties"]["Environment"]["Variables"]
    assert set(variables) == set(VARIABLES)
    config = Config.from_env(_environment(template))  # the defaults make a working function
    assert [c.name for c in config.columns] == ["event", "id", "at"]
    assert config.format == "csv" and config.iceberg_table == ""


def test_iceberg_parameters_make_a_working_iceberg_function(template):
    config = Config.from_env(
        _environment(
            template,
            Destination="Iceberg",
            Format="iceberg",
            Columns="id,amount,event=@eventName,version=@version",
            IcebergDatabase="lake",
            IcebergTable="orders",
            IcebergMode="upsert",
            IcebergKeys="id",
            IcebergTypes="amount=decimal(38,2)",
        )
    )
    assert (config.format, config.iceberg_table, config.iceberg_mode) == ("iceberg", "lake.orders", "upsert")
    assert config.iceberg_keys == ("id",) and dict(config.iceberg_types)["amount"] == "decimal(38,2)"


def test_iceberg_destination_is_a_second_stream_chosen_by_condition_with_least_privilege(template):
    resources, conditions = template["Resources"], template["Conditions"]
    assert conditions["ToS3"] == {"Fn::Equals": [{"Ref": "Destination"}, "S3"]}
    assert conditions["ToIceberg"] == {"Fn::Equals": [{"Ref": "Destination"}, "Iceberg"]}
    assert resources["DeliveryStream"]["Condition"] == "ToS3"
    stream = resources["IcebergDeliveryStream"]
    assert stream["Condition"] == "ToIceberg" and stream["DependsOn"] == "IcebergDeliveryPolicy"
    iceberg = stream["Properties"]["IcebergDestinationConfiguration"]
    assert stream["Properties"]["KinesisStreamSourceConfiguration"]["KinesisStreamARN"] == {
        "Fn::GetAtt": ["Stream", "Arn"]
    }
    assert iceberg["AppendOnly"] == {"Fn::If": ["IcebergAppendOnly", True, False]}
    assert conditions["IcebergAppendOnly"] == {"Fn::Equals": [{"Ref": "IcebergMode"}, "append"]}
    (table,) = iceberg["DestinationTableConfigurationList"]
    assert table["DestinationDatabaseName"] == {"Ref": "IcebergDatabase"}
    assert table["DestinationTableName"] == {"Ref": "IcebergTable"}
    assert table["UniqueKeys"] == {
        "Fn::If": ["IcebergHasKeys", {"Fn::Split": [",", {"Ref": "IcebergKeys"}]}, {"Ref": "AWS::NoValue"}]
    }
    assert iceberg["S3Configuration"]["ErrorOutputPrefix"].startswith("processing-failed/")
    (processor,) = iceberg["ProcessingConfiguration"]["Processors"]
    (s3_processor,) = resources["DeliveryStream"]["Properties"]["ExtendedS3DestinationConfiguration"][
        "ProcessingConfiguration"
    ]["Processors"]
    assert processor == s3_processor  # the same function, buffers and retries as the S3 destination

    policy = resources["IcebergDeliveryPolicy"]
    assert policy["Type"] == "AWS::IAM::RolePolicy" and policy["Condition"] == "ToIceberg"
    assert policy["Properties"]["RoleName"] == {"Ref": "DeliveryRole"}
    glue, files, lake_formation = policy["Properties"]["PolicyDocument"]["Statement"]
    assert glue["Action"] == ["glue:GetTable", "glue:GetDatabase", "glue:UpdateTable"]
    arn = "arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:"
    assert [r["Fn::Sub"] for r in glue["Resource"]] == [
        arn + "catalog",
        arn + "database/${IcebergDatabase}",
        arn + "table/${IcebergDatabase}/${IcebergTable}",
    ]  # this one table: no wildcards
    assert files["Action"] == ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    assert files["Resource"] == {"Fn::Sub": "${Bucket.Arn}/${IcebergWarehousePrefix}*"}
    condition, statement, otherwise = lake_formation["Fn::If"]
    assert condition == "IcebergWithLakeFormation" and otherwise == {"Ref": "AWS::NoValue"}
    assert statement["Action"] == "lakeformation:GetDataAccess"
    assert {"ToS3", "ToIceberg"} <= set(conditions) and "IcebergGoesWithFormatIceberg" in template["Rules"]


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
