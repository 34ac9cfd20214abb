"""A function URL's Cors: the spec field (function.yaml's url_cors), what a SAM template's
FunctionUrlConfig and an AWS::Lambda::Url become, and the answers built from it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from faas.deploy import sam
from faas.deploy.routes import Cors
from faas.errors import ValidationError
from faas.models import FunctionSpec
from gateway.api_events import http_cors_headers, http_preflight

CORS = {
    "allow_origins": ["https://app.example"],
    "allow_methods": ["GET", "POST"],
    "allow_headers": ["x-custom"],
    "expose_headers": ["x-trace"],
    "max_age": 300,
    "allow_credentials": True,
}


def test_url_cors_is_read_from_function_yaml_and_kept_through_storage() -> None:
    spec = FunctionSpec.from_mapping({"name": "web", "url_cors": CORS})
    assert spec.url_cors == Cors(
        allow_origins=("https://app.example",),
        allow_methods=("GET", "POST"),
        allow_headers=("x-custom",),
        expose_headers=("x-trace",),
        max_age=300,
        allow_credentials=True,
    )
    assert spec.to_mapping()["url_cors"] == CORS
    assert FunctionSpec.from_mapping(spec.to_mapping()) == spec
    plain = FunctionSpec.from_mapping({"name": "web"})
    assert plain.url_cors is None and "url_cors" not in plain.to_mapping()


@pytest.mark.parametrize(
    ("cors", "message"),
    [
        ("https://app.example", "url_cors must be a mapping"),
        ({"allow_origin": ["*"]}, "url_cors: unknown key(s): 'allow_origin'"),
        ({"allow_origins": "*"}, "url_cors.allow_origins must be a list of at most 100 strings"),
        ({"allow_origins": [f"https://{i}.example" for i in range(101)]}, "at most 100 strings"),
        ({"allow_origins": ["x" * 254]}, "url_cors.allow_origins entries must be printable text of 1 to 253"),
        ({"allow_methods": ["GET"] * 7}, "url_cors.allow_methods must be a list of at most 6"),
        ({"allow_methods": ["OPTIONS"]}, "1 to 6 characters"),
        ({"allow_headers": ["x-a\r\nSet-Cookie: a=b"]}, "url_cors.allow_headers entries must be printable text"),
        ({"max_age": 86401}, "url_cors.max_age must be 0..86400 seconds, got 86401"),
        ({"max_age": True}, "url_cors.max_age"),
        ({"allow_credentials": "yes"}, "url_cors.allow_credentials must be true or false, got 'yes'"),
    ],
)
def test_a_bad_url_cors_is_refused_with_its_reason(cors: object, message: str) -> None:
    with pytest.raises(ValidationError) as e:
        FunctionSpec.from_mapping({"name": "web", "url_cors": cors})
    assert message in e.value.message and e.value.message.startswith("function.yaml: ")


def test_the_preflight_of_a_function_url_comes_from_its_cors_alone() -> None:
    cors = FunctionSpec.from_mapping({"name": "web", "url_cors": CORS}).url_cors
    assert cors is not None
    status, headers, body = http_preflight(cors, "https://app.example", "POST")  # type: ignore[misc]
    assert (status, body) == (204, b"")
    assert headers == [
        ("Access-Control-Allow-Origin", "https://app.example"),
        ("Access-Control-Allow-Methods", "GET,POST"),
        ("Access-Control-Allow-Headers", "x-custom"),
        ("Access-Control-Max-Age", "300"),
        ("Access-Control-Allow-Credentials", "true"),
    ]
    assert http_preflight(cors, "https://evil.example", "POST") == (204, [], b"")
    assert http_preflight(cors, "https://app.example", None) is None  # no preflight: the function's
    assert http_cors_headers(cors, "https://app.example") == [
        ("Access-Control-Allow-Origin", "https://app.example"),
        ("Access-Control-Expose-Headers", "x-trace"),
        ("Access-Control-Allow-Credentials", "true"),
    ]
    assert http_cors_headers(cors, "https://evil.example") == [] and http_cors_headers(cors, None) == []
    anyone = Cors(allow_origins=("*",))
    assert http_cors_headers(anyone, "https://a.example") == [("Access-Control-Allow-Origin", "*")]


TEMPLATE = """\
Resources:
  Web:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
      Runtime: python3.11
      FunctionUrlConfig:
        AuthType: NONE
        Cors:
          AllowOrigins: [!Ref Origin]
          AllowMethods: [GET]
          ExposeHeaders: [x-trace]
          MaxAge: 60
          AllowCredentials: true
  Plain:
    Type: AWS::Lambda::Function
    Properties:
      FunctionName: plain-fn
      Handler: index.handler
      Runtime: python3.11
      Code: {ZipFile: "def handler(e, c):\\n    return 1\\n"}
  PlainUrl:
    Type: AWS::Lambda::Url
    Properties:
      TargetFunctionArn: !GetAtt Plain.Arn
      AuthType: NONE
      Cors: {AllowOrigins: ["*"], AllowHeaders: [content-type]}
Parameters:
  Origin: {Type: String, Default: "https://app.example"}
"""


def _template(tmp_path: Path, text: str) -> Path:
    (tmp_path / "app.py").write_text("def handler(e, c):\n    return 1\n")
    path = tmp_path / "template.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_function_url_cors_of_a_sam_function_and_of_an_aws_lambda_url(tmp_path: Path) -> None:
    template = sam.load(_template(tmp_path, TEMPLATE))
    specs = {f.spec.name: f.spec for f in template.functions}
    assert specs["Web"].url_cors == Cors(
        allow_origins=("https://app.example",),
        allow_methods=("GET",),
        expose_headers=("x-trace",),
        max_age=60,
        allow_credentials=True,
    )
    assert specs["plain-fn"].url_cors == Cors(allow_origins=("*",), allow_headers=("content-type",))
    assert not any("Cors" in w for w in template.warnings)


def test_a_bad_function_url_cors_refuses_the_template_and_names_it(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"Web\.FunctionUrlConfig\.Cors: unknown Cors key\(s\) AllowOrigin"):
        sam.load(_template(tmp_path, TEMPLATE.replace("AllowOrigins: [!Ref Origin]", "AllowOrigin: [x]")))
    with pytest.raises(ValidationError, match=r"url_cors\.max_age must be 0\.\.86400"):
        sam.load(_template(tmp_path, TEMPLATE.replace("MaxAge: 60", "MaxAge: 100000")))
    with pytest.raises(ValidationError, match=r"PlainUrl\.Cors: Cors must be an object"):
        sam.load(_template(tmp_path, TEMPLATE.replace('Cors: {AllowOrigins: ["*"], AllowHeaders: [content-type]}', "Cors: yes")))


def test_url_cors_survives_the_store(tmp_path: Path) -> None:
    from faas.deploy.store import _spec_from_json, _spec_json

    spec = FunctionSpec.from_mapping({"name": "web", "url_cors": CORS})
    assert _spec_from_json(_spec_json(spec)) == spec
    plain = FunctionSpec.from_mapping({"name": "web"})
    assert _spec_from_json(_spec_json(plain)) == plain
