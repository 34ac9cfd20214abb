"""Schedules read from SAM templates: Schedule and ScheduleV2 events, AWS::Events::Rule and
AWS::Scheduler::Schedule resources; what faas does not do is warned about, bad values refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from faas.deploy import sam
from faas.errors import ValidationError

TEMPLATE = """
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Parameters:
  Every:
    Type: String
    Default: rate(5 minutes)
Resources:
  Tick:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn/
      Handler: app.handler
      Runtime: python3.12
      Events:
        Often:
          Type: Schedule
          Properties:
            Schedule: !Ref Every
            Input: '{"from": "often"}'
            RetryPolicy: {MaximumRetryAttempts: 1}
        Never:
          Type: Schedule
          Properties:
            Schedule: cron(0 12 * * ? *)
            Enabled: false
        Paris:
          Type: ScheduleV2
          Properties:
            Name: morning
            ScheduleExpression: cron(0 9 ? * MON-FRI *)
            ScheduleExpressionTimezone: Europe/Paris
            State: ENABLED
  Rule:
    Type: AWS::Events::Rule
    Properties:
      ScheduleExpression: rate(1 hour)
      State: DISABLED
      Targets:
        - Arn: !GetAtt Tick.Arn
          Id: t
          InputPath: $.detail
  Pattern:
    Type: AWS::Events::Rule
    Properties:
      EventPattern: {source: [aws.s3]}
      Targets: [{Arn: !GetAtt Tick.Arn, Id: t}]
  Sched:
    Type: AWS::Scheduler::Schedule
    Properties:
      ScheduleExpression: at(2030-01-01T00:00:00)
      ScheduleExpressionTimezone: Asia/Tokyo
      FlexibleTimeWindow: {Mode: "OFF"}
      Target: {Arn: !GetAtt Tick.Arn, RoleArn: arn:aws:iam::123456789012:role/x, Input: '{"once": true}'}
"""


def load(tmp_path: Path, text: str) -> sam.Template:
    (tmp_path / "fn").mkdir(exist_ok=True)
    (tmp_path / "fn" / "app.py").write_text("def handler(e, c):\n    return e\n")
    path = tmp_path / "template.yaml"
    path.write_text(text)
    return sam.load(path)


def test_every_kind_of_schedule_is_read(tmp_path: Path) -> None:
    template = load(tmp_path, TEMPLATE)
    got = {s.name: s for s in template.schedules}
    assert set(got) == {"TickOften", "TickNever", "morning", "Rule", "Sched"}
    assert got["TickOften"].expression == "rate(5 minutes)" and got["TickOften"].input == '{"from": "often"}'
    assert got["TickNever"].enabled is False and got["Rule"].enabled is False
    assert got["morning"].kind == "ScheduleV2" and got["morning"].timezone == "Europe/Paris"
    assert got["Rule"].function == "Tick" and got["Rule"].input_path == "$.detail"
    assert got["Sched"].timezone == "Asia/Tokyo" and got["Sched"].input == '{"once": true}'
    warnings = "\n".join(template.warnings)
    assert "Tick.Events.Often: not supported by faas, ignored: RetryPolicy" in warnings
    assert "Pattern: an event-pattern rule is not run by faas" in warnings
    assert "FlexibleTimeWindow" not in warnings  # required by CloudFormation; faas fires on time
    assert "is not served by faas" not in warnings and "resources faas does not run" not in warnings


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("Schedule: !Ref Every", "Schedule: rate(1 minutes)", "rate(1 minute)"),
        ("State: ENABLED", "State: maybe", "ENABLED or DISABLED"),
        ("cron(0 9 ? * MON-FRI *)", "cron(0 9 * * MON-FRI *)", "must be '?'"),
        ("Europe/Paris", "Europe/Nowhere", "unknown time zone"),
    ],
)
def test_a_bad_schedule_refuses_the_template_with_its_place(tmp_path: Path, old: str, new: str, message: str) -> None:
    with pytest.raises(ValidationError) as e:
        load(tmp_path, TEMPLATE.replace(old, new))
    assert message in e.value.message and "Tick.Events." in e.value.message
