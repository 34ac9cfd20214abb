"""The ruby3.3 runtime beyond the shared matrix, through the real gateway: what a Ruby user of
Lambda writes works unchanged here. `faas init --runtime ruby3.3`'s starter answers; handlers
in a module or class (`file.Module::Class.method`) are called as Lambda's Ruby runtime calls
them; gems bundled into vendor/bundle are found through GEM_PATH and libraries under lib/
through RUBYLIB; a broken handler fails its init with Lambda's Ruby error types.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import requests

from faas.cli.scaffold import write_starter
from tests.integration.aws_clients import lambda_client, zip_code

pytestmark = pytest.mark.integration

CLASS_HANDLER = """
require "shout"  # a gem bundled into vendor/bundle (bundle config set path vendor/bundle)
require "helper" # /var/task/lib through the function's own RUBYLIB

module Greeting
  class Handler
    def self.process(event:, context:)
      { "greeting" => Shout.loud("hello #{event['name']}"), "helper" => Helper.name_of(context),
        "gem_path" => Gem.path.first(2) }
    end
  end
end
"""

GEM_SPEC = """
Gem::Specification.new do |s|
  s.name = "shout"
  s.version = "1.0.0"
  s.summary = "loud strings"
  s.authors = ["faas"]
  s.files = ["lib/shout.rb"]
  s.require_paths = ["lib"]
end
"""


def deploy(gateway, root: Path, name: str, handler: str, files: dict[str, str], env: str = "") -> str:
    folder = root / name
    for rel, text in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    (folder / "function.yaml").write_text(f"name: {name}\nruntime: ruby3.3\nhandler: {handler}\nmemory: 128\ntimeout: 5\n{env}")
    gateway.deploy(folder)
    return name


def unhandled(response) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text[:500]
    assert response.headers.get("X-Amz-Function-Error") == "Unhandled", response.text[:500]
    return response.json()


def test_the_starter_answers_an_event_and_a_url_call(gateway, tmp_path: Path) -> None:
    name = f"rb-start-{uuid.uuid4().hex[:6]}"
    gateway.deploy(write_starter(name, "ruby3.3", tmp_path))
    try:
        answer = gateway.invoke(name, b'{"name": "you"}')
        assert answer.status_code == 200 and "X-Amz-Function-Error" not in answer.headers, answer.text
        assert answer.json() == {"message": "Hello, you!", "requestId": answer.headers["x-amzn-RequestId"]}
        url_call = gateway.invoke(name, json.dumps({"queryStringParameters": {"name": "url"}}).encode())
        assert url_call.json()["message"] == "Hello, url!"
    finally:
        gateway.cli("rm", name)


def test_a_class_handler_with_a_bundled_gem_and_rubylib(gateway, tmp_path: Path) -> None:
    name = f"rb-class-{uuid.uuid4().hex[:6]}"
    gems = "vendor/bundle/ruby/3.3.0"
    files = {
        "app.rb": CLASS_HANDLER,
        f"{gems}/specifications/shout-1.0.0.gemspec": GEM_SPEC,
        f"{gems}/gems/shout-1.0.0/lib/shout.rb": "module Shout\n  def self.loud(text) = text.upcase + '!'\nend\n",
        "lib/helper.rb": "module Helper\n  def self.name_of(context) = context.function_name\nend\n",
    }
    deploy(gateway, tmp_path, name, "app.Greeting::Handler.process", files, "environment:\n  RUBYLIB: /var/task/lib\n")
    try:
        for _ in range(3):  # the first call and warm ones
            answer = gateway.invoke(name, b'{"name": "ruby"}')
            assert answer.status_code == 200 and "X-Amz-Function-Error" not in answer.headers, answer.text
            assert answer.json() == {
                "greeting": "HELLO RUBY!",
                "helper": name,
                "gem_path": ["/var/task/vendor/bundle/ruby/3.3.0", "/opt/ruby/gems/3.3.0"],
            }
    finally:
        gateway.cli("rm", name)


@pytest.mark.parametrize(
    ("handler", "source", "error_type", "message"),
    [
        ("app.handler", "def handler(event:, context:\n", "Init<SyntaxError>", "syntax error"),
        ("missing.handler", "", "Init<LoadError>", "cannot load such file -- /var/task/missing"),
        ("app.Nowhere.handler", "def handler(event:, context:) = 1\n", "Init<NameError>", "uninitialized constant Nowhere"),
        ("app", "", "Init<ArgumentError>", "Invalid handler app, must be of form FILENAME.METHOD"),
        ("app.absent", "def handler(event:, context:) = 1\n", "Function<NoMethodError>", "absent"),
    ],
)
def test_a_broken_handler_fails_with_lambdas_ruby_error(gateway, tmp_path: Path, handler, source, error_type, message) -> None:  # type: ignore[no-untyped-def]
    name = f"rb-bad-{uuid.uuid4().hex[:6]}"
    deploy(gateway, tmp_path, name, handler, {"app.rb": source})
    try:
        body = unhandled(gateway.invoke(name, b"{}"))
        assert body["errorType"] == error_type, body
        assert message in body["errorMessage"], body
        assert isinstance(body["stackTrace"], list)
        assert "/var/runtime/" not in json.dumps(body["stackTrace"])  # the runtime's own frames are left out
    finally:
        gateway.cli("rm", name)


SAM_TEMPLATE = """\
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Resources:
  HelloRuby{suffix}:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: hello_world/
      Handler: app.lambda_handler
      Runtime: ruby3.3
      Events:
        Hello:
          Type: Api
          Properties:
            Path: /rb-hello-{suffix}
            Method: get
"""

# What `sam init --runtime ruby3.3` writes (hello-world), plus the path it was called on.
SAM_APP = """\
require 'json'

def lambda_handler(event:, context:)
  {
    statusCode: 200,
    body: {
      message: "Hello World!",
      path: event["path"],
    }.to_json
  }
end
"""


def test_a_sam_template_naming_ruby33_deploys_and_answers_its_route(gateway, tmp_path: Path) -> None:
    suffix = uuid.uuid4().hex[:6]
    (tmp_path / "hello_world").mkdir()
    (tmp_path / "hello_world" / "app.rb").write_text(SAM_APP)
    (tmp_path / "template.yaml").write_text(SAM_TEMPLATE.format(suffix=suffix))
    out = gateway.cli("deploy", str(tmp_path / "template.yaml"), timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    try:
        answer = requests.get(f"{gateway.url}/rb-hello-{suffix}", timeout=60)
        assert (answer.status_code, answer.json()) == (200, {"message": "Hello World!", "path": f"/rb-hello-{suffix}"})
    finally:
        gateway.cli("rm", f"HelloRuby{suffix}")


LAYER_HANDLER = """
require "layered"   # /opt/ruby/lib, on RUBYLIB
require "whisper"   # a gem under /opt/ruby/gems/3.3.0, on GEM_PATH

def handler(event:, context:)
  { "layered" => Layered.hello, "whisper" => Whisper.quiet("HUSH") }
end
"""


def test_a_layers_ruby_lib_and_gems_are_found(gateway, tmp_path: Path) -> None:
    name = f"rb-layer-{uuid.uuid4().hex[:6]}"
    gems = "layer/ruby/gems/3.3.0"
    files = {
        "app.rb": LAYER_HANDLER,
        "layer/ruby/lib/layered.rb": "module Layered\n  def self.hello = 'from the layer'\nend\n",
        f"{gems}/specifications/whisper-2.0.0.gemspec": GEM_SPEC.replace("shout", "whisper").replace("1.0.0", "2.0.0"),
        f"{gems}/gems/whisper-2.0.0/lib/whisper.rb": "module Whisper\n  def self.quiet(text) = text.downcase\nend\n",
    }
    deploy(gateway, tmp_path, name, "app.handler", files, "layers:\n  - layer\n")
    try:
        answer = gateway.invoke(name, b"{}")
        assert answer.status_code == 200 and "X-Amz-Function-Error" not in answer.headers, answer.text
        assert answer.json() == {"layered": "from the layer", "whisper": "hush"}
    finally:
        gateway.cli("rm", name)


CALLER = """
require "net/http"

# Lambda's Invoke through AWS_ENDPOINT_URL_LAMBDA, which the runtime relays to the gateway
# from the container's own loopback (network: none too).
def handler(event:, context:)
  uri = URI("#{ENV['AWS_ENDPOINT_URL_LAMBDA']}/2015-03-31/functions/#{event['callee']}/invocations")
  answer = Net::HTTP.post(uri, JSON.generate({ "name" => "from ruby" }), "Content-Type" => "application/json")
  { "endpoint" => ENV["AWS_ENDPOINT_URL_LAMBDA"], "status" => answer.code.to_i, "answer" => JSON.parse(answer.body) }
end
"""

RUBY_GREETER = 'def handler(event:, context:) = { "greeting" => "hello #{event[\'name\']}" }\n'


def test_a_ruby_function_calls_another_through_aws_endpoint_url_lambda(gateway, tmp_path: Path) -> None:
    suffix = uuid.uuid4().hex[:6]
    callee = deploy(gateway, tmp_path, f"rb-callee-{suffix}", "app.handler", {"app.rb": RUBY_GREETER})
    caller = deploy(gateway, tmp_path, f"rb-caller-{suffix}", "app.handler", {"app.rb": CALLER}, "network: none\n")
    try:
        answer = gateway.invoke(caller, json.dumps({"callee": callee}).encode())
        assert answer.status_code == 200 and "X-Amz-Function-Error" not in answer.headers, answer.text
        body = answer.json()
        assert body["endpoint"] == "http://127.0.0.1:9002"
        assert (body["status"], body["answer"]) == (200, {"greeting": "hello from ruby"})
    finally:
        gateway.cli("rm", caller)
        gateway.cli("rm", callee)


CLASS_GREETER = """
class Greeter
  def self.handle(event:, context:)
    { message: "#{ENV['GREETING']}, #{event['name']}!", memory: context.memory_limit_in_mb }
  end
end
"""


def test_create_function_through_the_management_api_runs_ruby33(gateway) -> None:  # type: ignore[no-untyped-def]
    lam = lambda_client(gateway.url)
    name = f"rb-api-{uuid.uuid4().hex[:6]}"
    created = lam.create_function(
        FunctionName=name,
        Runtime="ruby3.3",
        Handler="function.Greeter.handle",
        Role="arn:aws:iam::123456789012:role/r",
        Code={"ZipFile": zip_code(CLASS_GREETER, name="function.rb")},
        Environment={"Variables": {"GREETING": "Howdy"}},
    )
    try:
        assert created["Runtime"] == "ruby3.3"
        answer = lam.invoke(FunctionName=name, Payload=b'{"name": "api"}')
        assert "FunctionError" not in answer
        assert json.loads(answer["Payload"].read()) == {"message": "Howdy, api!", "memory": "128"}
        with pytest.raises(lam.exceptions.InvalidParameterValueException) as refused:
            lam.create_function(
                FunctionName=f"{name}-old",
                Runtime="ruby3.2",
                Handler="function.handler",
                Role="arn:aws:iam::123456789012:role/r",
                Code={"ZipFile": zip_code(CLASS_GREETER, name="function.rb")},
            )
        assert "ruby3.3" in str(refused.value)  # the way forward names the Ruby runtime faas has
    finally:
        lam.delete_function(FunctionName=name)
