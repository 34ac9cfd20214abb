"""SAM templates: what is read, what is merged from Globals, and what is named in a warning."""

from __future__ import annotations

import io
import textwrap
import zipfile
from pathlib import Path

import pytest
import yaml

from faas.deploy import sam
from faas.deploy.packages import unpack
from faas.errors import ValidationError

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, template: str, code: dict[str, str] | None = None) -> Path:
    for rel, text in (code or {"src/app.py": "def handler(e, c):\n    return 1\n"}).items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    path = tmp_path / "template.yaml"
    path.write_text(textwrap.dedent(template))
    return path


def test_the_example_app_deploys_two_functions_with_globals_merged() -> None:
    template = sam.load(ROOT / "functions" / "sam-app" / "template.yaml")
    greeter, counter = template.functions
    assert (greeter.logical_id, greeter.spec.name, counter.spec.name) == ("GreeterFunction", "GreeterFunction", "sam-word-count")
    assert greeter.spec.timeout == 5 and greeter.spec.memory == 128 and counter.spec.memory == 256
    assert greeter.spec.environment == {"STAGE": "dev", "APP_NAME": "sam-app", "GREETING": "Hello"}
    assert counter.spec.environment["RESULTS_PREFIX"] == "dev-us-east-1"
    assert counter.spec.concurrency == 2 and greeter.spec.concurrency is None
    assert template.warnings == []  # its HttpApi event is a route now (tests/unit/test_routes.py)
    assert [(r.method, r.path, r.function, r.kind) for r in template.routes] == [("GET", "/greet", "GreeterFunction", "HttpApi")]


def test_every_unsupported_property_and_resource_is_named(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        Transform: AWS::Serverless-2016-10-31
        Globals:
          Function:
            Tracing: Active
            Runtime: provided.al2023
        Resources:
          Table:
            Type: AWS::DynamoDB::Table
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: src
              Handler: bootstrap
              Policies: [AWSLambdaBasicExecutionRole]
              Environment:
                Variables:
                  TABLE: !Ref Table
                  ARN: !GetAtt Table.Arn
    """,
    )
    template = sam.load(path)
    (fn,) = template.functions
    assert fn.spec.runtime == "provided.al2023"  # kept as written: Lambda's name, the provided image
    assert fn.spec.environment == {"TABLE": "Table"}
    text = "\n".join(template.warnings)
    assert "Fn: not supported by faas, ignored: Policies, Tracing" in text
    assert "environment variable ARN left out" in text and "GetAtt" in text
    assert "!Ref Table" in text
    assert "Table (AWS::DynamoDB::Table)" in text


@pytest.mark.parametrize(
    "props, message",
    [
        ("CodeUri: src\n      Handler: app.handler\n      Runtime: python2.7", "runtime must be one of"),
        (
            "CodeUri: src\n      Handler: app.handler\n      Runtime: python3.11\n      MemorySize: 64",
            "memory must be between 128",
        ),
        (
            "CodeUri: s3://bucket/key.zip\n      Handler: app.handler\n      Runtime: python3.11",
            "is in S3; faas deploys local code",
        ),
        ("CodeUri: nowhere\n      Handler: app.handler\n      Runtime: python3.11", "does not exist"),
        ("PackageType: Image\n      ImageUri: Not An Image", "image_uri must name an image"),
    ],
)
def test_invalid_functions_are_refused_with_the_reason(tmp_path: Path, props: str, message: str) -> None:
    body = "\n".join("      " + line.strip() for line in props.splitlines())
    path = write(tmp_path, f"Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n{body}\n")
    with pytest.raises(ValidationError, match=message):
        sam.load(path)


def test_a_template_without_functions_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n")
    with pytest.raises(ValidationError, match="no function faas can run"):
        sam.load(path)


def test_packages_carry_the_template_configuration_and_unpack_like_any_deploy(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        Resources:
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: src
              Handler: app.handler
              Runtime: python3.11
              Timeout: 9
    """,
        {"src/app.py": "x = 1\n", "src/function.yaml": "name: stale\n"},
    )
    (fn,) = sam.load(path).functions
    data = sam.package(fn)
    assert data == sam.package(fn)  # reproducible: redeploying unchanged code changes nothing
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert sorted(names) == ["app.py", "function.yaml"]
    assert yaml.safe_load(zipfile.ZipFile(io.BytesIO(data)).read("function.yaml"))["timeout"] == 9
    assert unpack(data, tmp_path / "packages", expected_name="Fn").spec == fn.spec


def test_merge_globals_follows_sams_rules() -> None:
    merged = sam.merge_globals(
        {"Timeout": 3, "Environment": {"Variables": {"A": "1", "B": "1"}}, "Layers": ["l1"]},
        {"Timeout": 9, "Environment": {"Variables": {"B": "2"}}, "Layers": ["l2"]},
    )
    assert merged == {"Timeout": 9, "Environment": {"Variables": {"A": "1", "B": "2"}}, "Layers": ["l1", "l2"]}


def test_is_template() -> None:
    assert sam.is_template(ROOT / "functions" / "sam-app" / "template.yaml")
    assert not sam.is_template(ROOT / "functions" / "hello" / "function.yaml")


INTRINSICS = """\
Parameters:
  Env: {Type: String, Default: prod, AllowedValues: [dev, prod]}
  Memory: {Type: Number, Default: "256"}
  Names: {Type: CommaDelimitedList, Default: "a,b,c"}
Mappings:
  Sizes:
    prod: {Timeout: 10}
    dev: {Timeout: 3}
Conditions:
  IsProd: !Equals [!Ref Env, prod]
  IsDev: !Not [!Condition IsProd]
Resources:
  Main:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
      Runtime: python3.11
      MemorySize: !Ref Memory
      Timeout: !FindInMap [Sizes, !Ref Env, Timeout]
      Description: !If [IsProd, !Ref AWS::NoValue, "a dev build"]
      Environment:
        Variables:
          SECOND: !Select [1, !Ref Names]
          PARTS: !Join ["-", !Split [",", "x,y"]]
          PEER: !GetAtt Other.Arn
          ONLY_DEV: !If [IsDev, "yes", !Ref AWS::NoValue]
  Other:
    Type: AWS::Serverless::Function
    Properties: {Handler: app.handler, Runtime: python3.11, FunctionName: other-fn}
  DevOnly:
    Type: AWS::Serverless::Function
    Condition: IsDev
    Properties: {Handler: app.handler, Runtime: python3.11}
"""


def test_intrinsics_parameters_mappings_and_conditions_are_resolved(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("def handler(e, c):\n    return 1\n")
    path = tmp_path / "template.yaml"
    path.write_text(INTRINSICS)
    template = sam.load(path)
    main = next(f for f in template.functions if f.logical_id == "Main")
    assert main.spec.memory == 256 and main.spec.timeout == 10 and not main.spec.description
    assert main.spec.environment == {
        "SECOND": "b",
        "PARTS": "x-y",
        "PEER": "arn:aws:lambda:us-east-1:123456789012:function:other-fn",
    }
    assert main.code == tmp_path  # no CodeUri: the template's folder, as SAM builds it
    assert [f.logical_id for f in template.functions] == ["Main", "Other"]
    assert "DevOnly: its Condition IsDev is false, not deployed" in template.warnings


def test_a_parameter_outside_its_allowed_values_refuses_the_template(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(INTRINSICS.replace("Default: prod", "Default: staging"))
    with pytest.raises(ValidationError, match="not one of its AllowedValues"):
        sam.load(path)


def test_parameter_overrides_in_sams_two_syntaxes(tmp_path: Path) -> None:
    assert sam.parse_overrides("Env=dev Memory='512'") == {"Env": "dev", "Memory": "512"}
    assert sam.parse_overrides("ParameterKey=Env,ParameterValue=dev") == {"Env": "dev"}
    with pytest.raises(ValidationError, match="not Key=Value"):
        sam.parse_overrides("Env")
    (tmp_path / "app.py").write_text("def handler(e, c):\n    return 1\n")
    path = tmp_path / "template.yaml"
    path.write_text(INTRINSICS)
    template = sam.load(path, sam.parse_overrides("Env=dev Memory=512"))
    assert [f.logical_id for f in template.functions] == ["Main", "Other", "DevOnly"]
    main = template.functions[0]
    assert main.spec.memory == 512 and main.spec.timeout == 3 and main.spec.description == "a dev build"
    assert main.spec.environment["ONLY_DEV"] == "yes"
    with pytest.raises(ValidationError, match="does not have: Nope"):
        sam.load(path, {"Nope": "1"})


def test_a_function_url_config_is_the_gateways_function_url(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("def handler(e, c):\n    return 1\n")
    path = tmp_path / "template.yaml"
    path.write_text(
        "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Handler: app.handler\n"
        "      Runtime: python3.11\n      FunctionUrlConfig: {AuthType: NONE}\n"
        "  G:\n    Type: AWS::Serverless::Function\n    Properties:\n      Handler: app.handler\n"
        "      Runtime: python3.11\n      FunctionUrlConfig: {AuthType: AWS_IAM, Cors: {AllowOrigins: ['*']}}\n"
    )
    template = sam.load(path)
    assert not any(w.startswith("F") for w in template.warnings)
    (warning,) = [w for w in template.warnings if w.startswith("G")]
    assert "/function/NAME" in warning and "not applied" not in warning and "without AWS_IAM auth" in warning
    f, g = template.functions
    assert f.spec.url_cors is None
    assert g.spec.url_cors is not None and g.spec.url_cors.allow_origins == ("*",)
