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
from pipeline.logs import DIMENSIONS, METRICS

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "template.yaml"
SERVICE_METRICS = json.loads((ROOT / "tests" / "fixtures" / "service-metrics.json").read_text("utf-8"))


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


_NO_VALUE = object()
EXISTING = "arn:aws:dynamodb:eu-west-1:123456789012:table/orders/stream/2026-01-01T00:00:00.000"
SOURCES = {  # the deployments the template offers: parameter values for each
    "kinesis": {},
    "dynamodb-streams": {"Source": "dynamodb-streams"},
    "dynamodb-streams-existing": {"Source": "dynamodb-streams", "ExistingDynamoDBStreamArn": EXISTING},
    "dynamodb-streams-iceberg": {
        "Source": "dynamodb-streams",
        "Destination": "Iceberg",
        "Format": "iceberg",
        "IcebergDatabase": "lake",
        "IcebergTable": "orders",
    },
}


OPS = frozenset({"CreateTable", "CreateStream", "CreateBucket"})  # conditions on what exists already (issue 13)


def render(template: dict[str, Any], keep: frozenset[str] = frozenset(), **values: str) -> dict[str, Any]:
    """The template as CloudFormation deploys it with these parameter values: conditions decided, Fn::If resolved,
    AWS::NoValue removed, resources and outputs whose condition is false left out (no Conditions left). An Fn::If
    on a condition in *keep* stays as it is written (its branches rendered)."""
    params = {name: str(p.get("Default", "")) for name, p in template["Parameters"].items()} | values
    decided: dict[str, bool] = {}

    def value(node: Any) -> Any:
        return params[node["Ref"]] if isinstance(node, dict) and "Ref" in node else node

    def condition(node: Any) -> bool:
        ((fn, args),) = node.items()
        if fn in ("Condition", "Fn::Condition"):  # the loader reads !Condition as Fn::Condition
            if args not in decided:
                decided[args] = condition(template["Conditions"][args])
            return decided[args]
        if fn == "Fn::Equals":
            return value(args[0]) == value(args[1])
        if fn == "Fn::Not":
            return not condition(args[0])
        if fn == "Fn::And":
            return all(condition(a) for a in args)
        assert fn == "Fn::Or", fn
        return any(condition(a) for a in args)

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if node == {"Ref": "AWS::NoValue"}:
                return _NO_VALUE
            if list(node) == ["Fn::If"]:
                name, then, otherwise = node["Fn::If"]
                if name in keep:
                    return {"Fn::If": [name, resolve(then), resolve(otherwise)]}
                return resolve(then if condition({"Condition": name}) else otherwise)
            items = {k: resolve(v) for k, v in node.items()}
            return {k: v for k, v in items.items() if v is not _NO_VALUE}
        if isinstance(node, list):
            return [v for v in map(resolve, node) if v is not _NO_VALUE]
        return node

    def kept(section: str) -> dict[str, Any]:
        return {
            name: resolve({k: v for k, v in body.items() if k != "Condition"})
            for name, body in template.get(section, {}).items()
            if "Condition" not in body or condition({"Condition": body["Condition"]})
        }

    rendered = {k: v for k, v in template.items() if k not in ("Conditions", "Resources", "Outputs")}
    rendered["Parameters"] = {
        n: {**p, "Default": values[n]} if n in values else p for n, p in template["Parameters"].items()
    }
    rendered["Resources"], rendered["Outputs"] = kept("Resources"), kept("Outputs")
    return rendered


@pytest.fixture(scope="module")
def deployed(template) -> dict[str, dict[str, Any]]:
    """Each source's rendered template."""
    return {name: render(template, **values) for name, values in SOURCES.items()}


def test_cfn_lint_finds_nothing_not_even_informational(tmp_path, deployed):
    """Offline: cfn-lint validates SAM resources with its bundled schemas, the template with every condition and
    each source's rendered template. A broken copy shows it really looks."""
    broken = tmp_path / "broken.yaml"
    text = TEMPLATE.read_text().replace("Handler: handler.lambda_handler", "Handlr: handler.lambda_handler")
    # and a reference to the stream that forgets it may not exist (ExistingStreamArn given): W1001
    unguarded = "KinesisStreamARN: !GetAtt Stream.Arn\n"
    text, guarded = re.subn(
        r"KinesisStreamARN: !If \[CreateStream, !GetAtt Stream.Arn, [^\n]*\n", unguarded, text, count=1
    )
    assert guarded == 1
    broken.write_text(text)
    rendered = []
    for name, body in deployed.items():
        rendered.append(tmp_path / f"{name}.json")
        rendered[-1].write_text(json.dumps(body, indent=1))
    lint = Path(sys.executable).with_name("cfn-lint")
    files = [str(TEMPLATE), *map(str, rendered), str(broken)]
    result = subprocess.run(
        [str(lint), "--format", "json", "--include-checks", "I", "--", *files],
        capture_output=True,
        text=True,
        check=False,
    )
    findings = json.loads(result.stdout)
    assert [f for f in findings if f["Filename"] != str(broken)] == []
    assert {"E3002", "W1001"} <= {f["Rule"]["Id"] for f in findings}, result.stdout + result.stderr


def _statements(policy_holder: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for policy in policy_holder.get("Policies", []) for s in policy["PolicyDocument"]["Statement"]]


def _name(reference: Any) -> str:
    """A reference as text: 'Stream.Arn', a !Sub text (its variables filled in), 'Cond ? this : that' for !If."""
    if isinstance(reference, str):
        return reference
    assert isinstance(reference, dict), f"{reference!r} is not a reference to a resource of this template"
    if "Fn::GetAtt" in reference:
        return ".".join(reference["Fn::GetAtt"])
    if "Ref" in reference:
        return reference["Ref"]
    if "Fn::If" in reference:
        condition, this, that = reference["Fn::If"]
        return f"{condition} ? {_name(this)} : {_name(that)}"
    text = reference["Fn::Sub"]
    if isinstance(text, list):
        text, variables = text
        for variable, value in variables.items():
            text = text.replace(f"${{{variable}}}", f"{{{_name(value)}}}")
    return text


def _grants(role: dict[str, Any]) -> set[tuple[str, str]]:
    """(action, resource) pairs a role allows; resources as written: 'Stream.Arn', a !Sub text, an !If of them."""
    grants = set()
    for statement in _statements(role["Properties"]):
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for resource in resources:
            grants |= {(action, _name(resource)) for action in actions}
    return grants


def _references(node: Any) -> set[str]:
    """The logical names a rendered template's value refers to (Ref, GetAtt, ${...} in Sub)."""
    if isinstance(node, list):
        return set().union(*map(_references, node))
    if not isinstance(node, dict):
        return set()
    if "Ref" in node:
        return {node["Ref"]}
    if "Fn::GetAtt" in node:
        return {node["Fn::GetAtt"][0]}
    if "Fn::Sub" in node:
        text, variables = (node["Fn::Sub"], {}) if isinstance(node["Fn::Sub"], str) else node["Fn::Sub"]
        named = {name.split(".")[0] for name in re.findall(r"\$\{([^}!]+)\}", text)} - set(variables)
        return named | _references(list(variables.values()))
    return set().union(*map(_references, node.values()))


@pytest.mark.parametrize("source", SOURCES)
def test_each_source_renders_a_template_whose_references_all_exist(deployed, source):
    rendered = deployed[source]
    names = {*rendered["Parameters"], *rendered["Resources"], "AWS::AccountId", "AWS::Partition", "AWS::Region"}
    names |= {"AWS::StackName"}
    used = _references(rendered["Resources"]) | _references(rendered["Outputs"])
    assert used <= names, used - names


def test_sources_make_only_their_own_resources(deployed):
    pipe = {"Pipe", "PipeRole", "PipeDeadLetterQueue", "PipeDeadLetterQueuePolicy", "PipeDeadLetterAlarm"}
    kinesis, streams, existing = (set(deployed[name]["Resources"]) for name in list(SOURCES)[:3])
    assert {"Table", "Stream", "IteratorAgeAlarm"} <= kinesis and not kinesis & pipe
    assert streams == (kinesis - {"Stream", "IteratorAgeAlarm"}) | pipe
    assert existing == streams - {"Table"}
    table = deployed["dynamodb-streams"]["Resources"]["Table"]["Properties"]
    assert table["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert "KinesisStreamSpecification" not in table
    assert "StreamSpecification" not in deployed["kinesis"]["Resources"]["Table"]["Properties"]
    assert set(deployed["kinesis"]["Outputs"]) >= {"TableName", "StreamArn"}
    assert {"PipeName", "PipeDeadLetterQueueUrl"} <= set(deployed["dynamodb-streams-existing"]["Outputs"])
    assert not {"TableName", "StreamArn"} & set(deployed["dynamodb-streams-existing"]["Outputs"])


@pytest.mark.parametrize("source", ["dynamodb-streams", "dynamodb-streams-existing"])
def test_pipe_reads_the_stream_into_the_direct_put_delivery_stream_keeping_shard_order(deployed, source):
    resources = deployed[source]["Resources"]
    pipe = resources["Pipe"]["Properties"]
    read = (
        {"Fn::Sub": "${ExistingDynamoDBStreamArn}"}
        if source.endswith("existing")
        else {"Fn::GetAtt": ["Table", "StreamArn"]}
    )
    assert pipe["Source"] == read
    assert pipe["Target"] == {"Fn::GetAtt": ["DeliveryStream", "Arn"]}
    assert pipe["RoleArn"] == {"Fn::GetAtt": ["PipeRole", "Arn"]}
    assert "TargetParameters" not in pipe and "Enrichment" not in pipe  # each stream record as it is
    params = pipe["SourceParameters"]["DynamoDBStreamParameters"]
    assert params["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["PipeDeadLetterQueue", "Arn"]}}
    assert params["ParallelizationFactor"] == 1
    assert {k: v["Ref"] for k, v in params.items() if isinstance(v, dict) and "Ref" in v} == {
        "StartingPosition": "PipeStartingPosition",
        "BatchSize": "PipeBatchSize",
        "MaximumBatchingWindowInSeconds": "PipeBatchingWindowSeconds",
        "MaximumRetryAttempts": "PipeMaximumRetryAttempts",
        "MaximumRecordAgeInSeconds": "PipeMaximumRecordAgeSeconds",
    }
    parameters = deployed[source]["Parameters"]
    assert parameters["PipeBatchSize"]["MaxValue"] == 500  # a Firehose target takes batches of 500 at most
    assert parameters["PipeMaximumRecordAgeSeconds"]["MaxValue"] < 24 * 3600  # the stream keeps records a day
    delivery = resources["DeliveryStream"]["Properties"]
    assert delivery["DeliveryStreamType"] == "DirectPut" and "KinesisStreamSourceConfiguration" not in delivery
    assert delivery["DeliveryStreamName"] == {"Fn::Sub": "${AWS::StackName}-changes"}
    queue = resources["PipeDeadLetterQueue"]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True and queue["MessageRetentionPeriod"] == 14 * 24 * 3600
    (deny,) = resources["PipeDeadLetterQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


@pytest.mark.parametrize("source", ["dynamodb-streams", "dynamodb-streams-existing"])
def test_iam_least_privilege_on_the_pipe_path(deployed, source):
    resources = deployed[source]["Resources"]
    roles = {name: r for name, r in resources.items() if r["Type"] == "AWS::IAM::Role"}
    assert set(roles) == {"FunctionRole", "DeliveryRole", "PipeRole"}
    assert not [r for r in roles.values() if "ManagedPolicyArns" in r["Properties"]]
    stream = "${ExistingDynamoDBStreamArn}" if source.endswith("existing") else "Table.StreamArn"
    assert _grants(roles["PipeRole"]) == {
        *((f"dynamodb:{a}", stream) for a in ("DescribeStream", "GetRecords", "GetShardIterator", "ListStreams")),
        ("firehose:PutRecordBatch", "DeliveryStream.Arn"),
        ("sqs:SendMessage", "PipeDeadLetterQueue.Arn"),
    }
    # the function re-ingests into the delivery stream, named as the delivery stream is named (no cycle)
    name = resources["DeliveryStream"]["Properties"]["DeliveryStreamName"]["Fn::Sub"]
    firehose = f"arn:${{AWS::Partition}}:firehose:${{AWS::Region}}:${{AWS::AccountId}}:deliverystream/{name}"
    assert _grants(roles["FunctionRole"]) == {
        ("logs:CreateLogStream", "FunctionLogGroup.Arn"),
        ("logs:PutLogEvents", "FunctionLogGroup.Arn"),
        ("firehose:PutRecordBatch", firehose),
    }
    # Firehose reads no stream: the pipe puts records in
    assert not [grant for grant in _grants(roles["DeliveryRole"]) if grant[0].startswith("kinesis:")]
    (trust,) = roles["PipeRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "pipes.amazonaws.com"} and trust["Action"] == "sts:AssumeRole"
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


# The stack's stream and bucket, or the ones named by the ExistingStreamArn and ExistingBucketName parameters.
STREAM = "CreateStream ? Stream.Arn : ExistingStreamArn"
BUCKET = "CreateBucket ? Bucket.Arn : arn:${AWS::Partition}:s3:::${ExistingBucketName}"
IN_BUCKET = "arn:${AWS::Partition}:s3:::{CreateBucket ? Bucket : ExistingBucketName}/"


def test_iam_names_only_this_stacks_stream_function_bucket_and_log_groups(template):
    resources = render(template, keep=OPS)["Resources"]  # Source=kinesis; what exists already still open
    roles = {name: r for name, r in resources.items() if r["Type"] == "AWS::IAM::Role"}
    assert set(roles) == {"FunctionRole", "DeliveryRole"}  # BackfillRole: only with BackfillExportBucket
    assert not [r for r in resources.values() if r["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")]
    assert not [r for r in roles.values() if "ManagedPolicyArns" in r["Properties"]]
    function = resources["Function"]["Properties"]
    assert function["Role"] == {"Fn::GetAtt": ["FunctionRole", "Arn"]}
    assert "Policies" not in function  # SAM would make a role of its own (with broader log rights)

    assert _grants(roles["FunctionRole"]) == {
        ("logs:CreateLogStream", "FunctionLogGroup.Arn"),
        ("logs:PutLogEvents", "FunctionLogGroup.Arn"),
        ("kinesis:PutRecords", STREAM),
    }
    assert _grants(roles["DeliveryRole"]) == {
        *((f"kinesis:{a}", STREAM) for a in ("DescribeStream", "GetShardIterator", "GetRecords", "ListShards")),
        ("lambda:InvokeFunction", "Function.Arn"),
        ("lambda:GetFunctionConfiguration", "Function.Arn"),
        *((f"s3:{a}", BUCKET) for a in ("GetBucketLocation", "ListBucket", "ListBucketMultipartUploads")),
        *(
            (f"s3:{a}", IN_BUCKET + prefix)
            for a in ("AbortMultipartUpload", "GetObject", "PutObject")
            for prefix in ("${DataPrefix}*", "processing-failed/*")
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
    condition, from_kinesis, _otherwise = stream["Properties"]["KinesisStreamSourceConfiguration"]["Fn::If"]
    assert condition == "FromKinesis" and _name(from_kinesis["KinesisStreamARN"]) == STREAM
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
    assert _name(files["Resource"]) == IN_BUCKET + "${IcebergWarehousePrefix}*"  # the new or existing bucket
    assert _name(iceberg["S3Configuration"]["BucketARN"]) == BUCKET
    condition, statement, otherwise = lake_formation["Fn::If"]
    assert condition == "IcebergWithLakeFormation" and otherwise == {"Ref": "AWS::NoValue"}
    assert statement["Action"] == "lakeformation:GetDataAccess"
    assert {"ToS3", "ToIceberg"} <= set(conditions) and "IcebergGoesWithFormatIceberg" in template["Rules"]


def test_delivery_stream_wiring(template, deployed):
    resources = render(template, keep=OPS)["Resources"]  # Source=kinesis; what exists already still open
    delivery = resources["DeliveryStream"]["Properties"]
    assert _name(delivery["KinesisStreamSourceConfiguration"]["KinesisStreamARN"]) == STREAM
    assert _name(resources["Table"]["Properties"]["KinesisStreamSpecification"]["StreamArn"]) == STREAM
    assert _name(delivery["ExtendedS3DestinationConfiguration"]["BucketARN"]) == BUCKET
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
    raw = template["Resources"]["DeliveryStream"]["Properties"]["ExtendedS3DestinationConfiguration"]
    assert raw["DynamicPartitioningConfiguration"]["Fn::If"][0] == "Partitioned"
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

    assert "BackfillJob" not in render(template)["Resources"]  # by default there is none
    resources = render(template, keep=OPS, BackfillExportBucket="my-exports")["Resources"]
    assert "BackfillJob" not in render(template, BackfillExportBucket="my-exports", Destination="Iceberg")["Resources"]
    assert template["Conditions"]["Backfill"] == {  # and only for the S3 destination: the job writes objects
        "Fn::And": [{"Fn::Not": [{"Fn::Equals": [{"Ref": "BackfillExportBucket"}, ""]}]}, {"Fn::Condition": "ToS3"}]
    }
    assert template["Parameters"]["BackfillExportBucket"]["Default"] == ""
    job, role = resources["BackfillJob"], resources["BackfillRole"]
    assert template["Resources"]["BackfillJob"]["Condition"] == template["Resources"]["BackfillRole"]["Condition"]
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "glue.amazonaws.com"} and trust["Action"] == "sts:AssumeRole"
    assert "ManagedPolicyArns" not in role["Properties"]
    assert _grants(role) == {
        ("s3:ListBucket", "arn:${AWS::Partition}:s3:::${BackfillExportBucket}"),
        ("s3:GetObject", "arn:${AWS::Partition}:s3:::${BackfillExportBucket}/${BackfillExportPrefix}*"),
        ("s3:GetObject", IN_BUCKET + "backfill-code/*"),
        *((f"s3:{a}", IN_BUCKET + "${DataPrefix}*") for a in ("AbortMultipartUpload", "PutObject")),
        *((f"s3:{a}", IN_BUCKET + "processing-failed/*") for a in ("AbortMultipartUpload", "PutObject")),
        *(
            (f"logs:{a}", "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws-glue/*")
            for a in ("CreateLogGroup", "CreateLogStream", "PutLogEvents")
        ),
    }
    properties = job["Properties"]
    assert properties["GlueVersion"] == "5.0" and properties["Role"] == {"Fn::GetAtt": ["BackfillRole", "Arn"]}
    where = "s3://{CreateBucket ? Bucket : ExistingBucketName}/backfill-code/"
    assert _name(properties["Command"]["ScriptLocation"]) == where + "backfill_job.py"
    assert _name(properties["DefaultArguments"]["--additional-python-modules"]).startswith(where)
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


def test_pipe_puts_into_the_iceberg_delivery_stream_when_the_destination_is_iceberg(deployed):
    resources = deployed["dynamodb-streams-iceberg"]["Resources"]
    assert "DeliveryStream" not in resources and "Stream" not in resources
    iceberg = resources["IcebergDeliveryStream"]["Properties"]
    assert iceberg["DeliveryStreamType"] == "DirectPut" and "KinesisStreamSourceConfiguration" not in iceberg
    assert iceberg["DeliveryStreamName"] == {"Fn::Sub": "${AWS::StackName}-changes"}  # what the function may put into
    assert resources["Pipe"]["Properties"]["Target"] == {"Fn::GetAtt": ["IcebergDeliveryStream", "Arn"]}
    assert ("firehose:PutRecordBatch", "IcebergDeliveryStream.Arn") in _grants(resources["PipeRole"])
    assert ("firehose:PutRecordBatch", "DeliveryStream.Arn") not in _grants(resources["PipeRole"])


# --- ops (issue 13): alarms, dashboard, existing resources ---


def _emitted(namespace: Any, name: str, dimensions: list[str]) -> str | None:
    """Why (namespace, name, dimensions) is not a metric anything emits, or None if it is one.

    The function's: in the MetricsNamespace parameter's namespace, a name of ``pipeline.logs.METRICS``, exactly
    its dimension set. A service's: a metric and dimensions its documentation lists
    (tests/fixtures/service-metrics.json).
    """
    if namespace == {"Ref": "MetricsNamespace"}:
        if name not in METRICS:
            return f"{name} is not a metric of the summary line"
        if sorted(dimensions) != sorted(DIMENSIONS):
            return f"{name} is emitted with dimensions {DIMENSIONS}, not {dimensions}"
        return None
    documented = SERVICE_METRICS.get(namespace)
    if documented is None:
        return f"{namespace} is neither MetricsNamespace nor a documented AWS namespace"
    if name not in documented["metrics"]:
        return f"{namespace} {name} is not in the documented list"
    if not set(dimensions) <= set(documented["dimensions"]):
        return f"{namespace} {name}: dimensions {dimensions} are not documented"
    return None


def _alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    resources = template["Resources"]
    return {name: r for name, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}


def test_every_alarm_watches_a_metric_the_function_or_a_service_really_emits(template):
    alarms = _alarms(template)
    watched = {}
    for name, alarm in alarms.items():
        props = alarm["Properties"]
        dimensions = [d["Name"] for d in props["Dimensions"]]
        metric = props["MetricName"]
        choices = metric["Fn::If"][1:] if isinstance(metric, dict) else [metric]  # by destination: S3 or Iceberg
        for choice in choices:
            assert _emitted(props["Namespace"], choice, dimensions) is None, name
        namespace = "function" if props["Namespace"] == {"Ref": "MetricsNamespace"} else props["Namespace"]
        watched[namespace, choices[0]] = (props["Statistic"], props["ComparisonOperator"], props["Threshold"])
    assert watched == {  # what issue 13 asks for
        ("function", "RecordsFailed"): ("Sum", "GreaterThanThreshold", 0),
        ("AWS/Lambda", "Errors"): ("Sum", "GreaterThanThreshold", 0),
        ("AWS/Lambda", "Throttles"): ("Sum", "GreaterThanThreshold", 0),
        ("AWS/Firehose", "DeliveryToS3.DataFreshness"): (
            "Maximum",
            "GreaterThanThreshold",
            {"Ref": "FreshnessThresholdSeconds"},
        ),
        ("AWS/Firehose", "ExecuteProcessing.Success"): ("Minimum", "LessThanThreshold", 1),
        ("AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds"): (
            "Maximum",
            "GreaterThanThreshold",
            {"Ref": "IteratorAgeThresholdMs"},
        ),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"): ("Maximum", "GreaterThanThreshold", 0),  # the pipe's DLQ
    }
    (records_failed,) = [a for a in alarms.values() if a["Properties"]["MetricName"] == "RecordsFailed"]
    assert records_failed["Properties"]["Period"] == 300  # any failed record in 5 minutes
    assert records_failed["Condition"] == "MetricsOn"  # PIPELINE_METRICS_NAMESPACE=off emits none


def test_the_checks_of_what_is_emitted_really_look():
    assert _emitted({"Ref": "MetricsNamespace"}, "RecordsFailed", list(DIMENSIONS)) is None
    assert _emitted({"Ref": "MetricsNamespace"}, "RecordFailures", list(DIMENSIONS))
    assert _emitted({"Ref": "MetricsNamespace"}, "RecordsFailed", ["FunctionName"])  # another metric
    assert _emitted("AWS/Lambda", "Errors", ["FunctionName"]) is None
    assert _emitted("AWS/Lambda", "Error", ["FunctionName"])
    assert _emitted("AWS/Firehose", "DeliveryToS3.DataFreshness", ["StreamName"])
    assert _emitted("AWS/Kinessis", "GetRecords.IteratorAgeMilliseconds", ["StreamName"])


def test_alarms_notify_the_topic_only_when_one_is_given(template):
    assert template["Conditions"]["Notify"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]}
    assert template["Parameters"]["AlarmTopicArn"]["Default"] == ""
    notify = {"Fn::If": ["Notify", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
    for name, alarm in _alarms(template).items():
        props = alarm["Properties"]
        assert props["AlarmActions"] == props["OKActions"] == notify, name
        assert props["TreatMissingData"] == "notBreaching", name  # no traffic is not an incident
        assert props["AlarmDescription"], name


def _dashboard_metrics(template: dict[str, Any]) -> list[tuple[Any, str, list[str]]]:
    """(namespace, metric, dimension names) of every metric the dashboard graphs, with either destination."""
    text, variables = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    names = set(template["Parameters"]) | set(template["Resources"]) | set(variables)
    for variable in re.findall(r"\$\{([^}]+)\}", text):
        assert variable in names or variable.startswith("AWS::"), variable
    text = text.replace("${MetricsNamespace}", "@MetricsNamespace")
    bodies = [text]
    for variable, value in variables.items():  # an !If between two names (S3 or Iceberg): a body with each
        if isinstance(value, dict) and "Fn::If" in value and all(isinstance(v, str) for v in value["Fn::If"][1:]):
            bodies = [b.replace(f"${{{variable}}}", choice) for b in bodies for choice in value["Fn::If"][1:]]
    widgets = [w for b in bodies for w in json.loads(re.sub(r"\$\{[^}]+\}", "1", b))["widgets"]]  # values: any
    graphed = []
    for widget in widgets:
        for metric in widget["properties"]["metrics"]:
            namespace, name, *rest = (m for m in metric if not isinstance(m, dict))
            namespace = {"Ref": "MetricsNamespace"} if namespace == "@MetricsNamespace" else namespace
            graphed.append((namespace, name, rest[::2]))
    return graphed


def test_every_dashboard_graph_shows_a_metric_that_is_emitted(template):
    graphed = _dashboard_metrics(template)
    for namespace, name, dimensions in graphed:
        assert _emitted(namespace, name, dimensions) is None, (namespace, name)
    shown = {name for _, name, _ in graphed}
    # records by result, re-ingested, duration, response bytes against the budget, freshness, iterator age
    assert {"RecordsOk", "RecordsDropped", "RecordsFailed", "RecordsReingested", "DurationMs", "ResponseBytes"} <= shown
    assert {
        "DeliveryToS3.DataFreshness",
        "DeliveryToIceberg.DataFreshness",
        "GetRecords.IteratorAgeMilliseconds",
    } <= shown
    text = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"][0]
    assert '"value": ${MaxResponseBytes}' in text  # the budget line on the response-size graph


def test_the_stack_creates_only_what_is_missing(template):
    """Existing table, stream, bucket: each one given by a parameter is not created, and is what is used."""
    conditions, resources, parameters = template["Conditions"], template["Resources"], template["Parameters"]
    for resource, condition, parameter in (
        ("Table", "CreateTable", "ExistingTableName"),
        ("Stream", "CreateStream", "ExistingStreamArn"),
        ("Bucket", "CreateBucket", "ExistingBucketName"),
        ("BucketPolicy", "CreateBucket", "ExistingBucketName"),
    ):
        made_when = resources[resource]["Condition"]  # the Source's conditions join in for the table and stream
        assert made_when == condition or condition in json.dumps(conditions[made_when])
        assert conditions[condition] == {"Fn::Equals": [{"Ref": parameter}, ""]}
        assert parameters[parameter]["Default"] == ""  # a new demo stack by default
    # every reference to them is guarded (cfn-lint's W1001, which the lint test shows it reports); the outputs
    # name what is used, made or not
    outputs = template["Outputs"]
    assert _name(outputs["StreamArn"]["Value"]) == STREAM
    assert _name(outputs["TableName"]["Value"]) == "MakesTable ? Table : ExistingTableName"  # MakesTable: Source
    assert _name(outputs["BucketName"]["Value"]) == "CreateBucket ? Bucket : ExistingBucketName"
    iterator_age = [a for a in _alarms(template).values() if a["Properties"]["Namespace"] == "AWS/Kinesis"]
    (dimension,) = iterator_age[0]["Properties"]["Dimensions"]
    existing_name = {"Fn::Select": [1, {"Fn::Split": ["/", {"Ref": "ExistingStreamArn"}]}]}  # arn:...:stream/NAME
    assert dimension["Value"] == {"Fn::If": ["CreateStream", {"Ref": "Stream"}, existing_name]}
    assert iterator_age[0]["Condition"] == "FromKinesis"  # Source: the pipe path has no Kinesis stream


@pytest.mark.parametrize(
    ("parameter", "good", "bad"),
    [
        ("ExistingStreamArn", "arn:aws:kinesis:eu-west-1:123456789012:stream/orders-changes", "orders-changes"),
        ("ExistingBucketName", "my-lake.example", "s3://my-lake"),
        ("ExistingTableName", "orders", "arn:aws:dynamodb:eu-west-1:123456789012:table/orders"),
        ("AlarmTopicArn", "arn:aws:sns:eu-west-1:123456789012:pager", "pager"),
        ("MetricsNamespace", "off", "AWS/Lambda"),
    ],
)
def test_parameters_refuse_what_cloudformation_could_not_use(template, parameter, good, bad):
    pattern = re.compile(template["Parameters"][parameter]["AllowedPattern"])
    assert pattern.fullmatch(good) and pattern.fullmatch("" if parameter != "MetricsNamespace" else "Orders/Pipe")
    assert not pattern.fullmatch(bad)


def test_the_pipes_dead_letter_alarm_watches_the_pipes_own_queue(deployed):
    """Changes the pipe could not put are only described in its dead-letter queue: any one of them alarms."""
    resources = deployed["dynamodb-streams"]["Resources"]
    props = resources["PipeDeadLetterAlarm"]["Properties"]
    assert props["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["PipeDeadLetterQueue", "QueueName"]}}]
    dead_letter = resources["Pipe"]["Properties"]["SourceParameters"]["DynamoDBStreamParameters"]["DeadLetterConfig"]
    assert dead_letter == {"Arn": {"Fn::GetAtt": ["PipeDeadLetterQueue", "Arn"]}}
    assert "PipeDeadLetterAlarm" not in deployed["kinesis"]["Resources"]
