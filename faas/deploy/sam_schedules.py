"""Schedules from a SAM template, read as SAM and CloudFormation read them.

A function's `Events` of type `Schedule` (an EventBridge rule, UTC) and `ScheduleV2`
(EventBridge Scheduler, with a time zone), and the resources `AWS::Events::Rule` (with a
ScheduleExpression; pattern rules are not schedules) and `AWS::Scheduler::Schedule` whose
target is a function of the template. The Schedules go to the gateway
(faas/events/schedule.py); what faas does not do (retry policies, dead-letter queues,
flexible windows, start and end dates) is named in warnings, as sam_routes.py does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from faas.errors import ValidationError
from faas.events.schedule import RULE, SCHEDULER, Schedule
from faas.models import short_repr

EVENT_TYPES = (RULE, SCHEDULER)
RULE_TYPE = "AWS::Events::Rule"
SCHEDULER_TYPE = "AWS::Scheduler::Schedule"
RESOURCE_TYPES = (RULE_TYPE, SCHEDULER_TYPE)
_EVENT_PROPS = {
    RULE: {"Schedule", "Input", "Enabled", "State", "Name", "Description"},
    SCHEDULER: {"ScheduleExpression", "ScheduleExpressionTimezone", "Input", "State", "Name", "Description"},
}
_RULE_PROPS = {"ScheduleExpression", "State", "Name", "Description", "Targets", "EventPattern"}
_SCHEDULER_PROPS = {
    "ScheduleExpression",
    "ScheduleExpressionTimezone",
    "State",
    "Name",
    "Description",
    "Target",
    "GroupName",
    "FlexibleTimeWindow",
}

Value = Callable[[Any, str], Any]


def template_schedules(
    resources: Mapping[str, Any], functions: Mapping[str, str], value: Value, warnings: list[str]
) -> list[Schedule]:
    """functions: logical id -> function name (those deployed); value(raw, where) resolves
    intrinsics. A schedule aimed at something else than a function here is warned about."""
    found: list[Schedule] = []
    for logical_id, name in functions.items():
        resource = resources.get(logical_id)
        events = ((resource or {}).get("Properties") or {}).get("Events") or {}
        if not isinstance(events, Mapping):
            continue  # sam_routes.py refuses it with its reason
        for event_id, event in events.items():
            kind = event.get("Type") if isinstance(event, Mapping) else None
            if kind not in EVENT_TYPES:
                continue
            where = f"{logical_id}.Events.{event_id}"
            props = value(event.get("Properties") or {}, f"{where}.Properties")
            if not isinstance(props, Mapping):
                raise ValidationError(f"{where}.Properties must be a map")
            _warn_ignored(props, _EVENT_PROPS[kind], where, warnings)
            expression = props.get("Schedule" if kind == RULE else "ScheduleExpression")
            found.append(
                _schedule(
                    name=props.get("Name") or f"{logical_id}{event_id}",  # SAM's logical id of the rule
                    function=name,
                    expression=expression,
                    kind=kind,
                    timezone=props.get("ScheduleExpressionTimezone") if kind == SCHEDULER else None,
                    input=props.get("Input"),
                    input_path=None,
                    enabled=_enabled(props, where),
                    where=where,
                )
            )
    for logical_id, resource in resources.items():
        kind = resource.get("Type") if isinstance(resource, Mapping) else None
        if kind not in RESOURCE_TYPES:
            continue
        where = str(logical_id)
        props = value(resource.get("Properties") or {}, f"{where}.Properties")
        if not isinstance(props, Mapping):
            raise ValidationError(f"{where}.Properties must be a map")
        if kind == RULE_TYPE and "ScheduleExpression" not in props:
            warnings.append(f"{where}: an event-pattern rule is not run by faas, ignored")
            continue
        _warn_ignored(props, _RULE_PROPS if kind == RULE_TYPE else _SCHEDULER_PROPS, where, warnings)
        targets = props.get("Targets") if kind == RULE_TYPE else [props.get("Target")]
        if not isinstance(targets, list) or not targets:
            raise ValidationError(f"{where}: {'Targets' if kind == RULE_TYPE else 'Target'} must name a function")
        for i, target in enumerate(targets):
            at = f"{where}.Targets[{i}]" if kind == RULE_TYPE else f"{where}.Target"
            if not isinstance(target, Mapping):
                raise ValidationError(f"{at} must be a map")
            function = _function_of(target.get("Arn"), functions)
            if function is None:
                warnings.append(f"{at}: {short_repr(target.get('Arn'))} is not a function of this template, ignored")
                continue
            base = str(props.get("Name") or logical_id)
            found.append(
                _schedule(
                    name=base if len(targets) == 1 else f"{base}-{target.get('Id') or i}",
                    function=function,
                    expression=props.get("ScheduleExpression"),
                    kind=RULE if kind == RULE_TYPE else SCHEDULER,
                    timezone=props.get("ScheduleExpressionTimezone") if kind == SCHEDULER_TYPE else None,
                    input=target.get("Input"),
                    input_path=target.get("InputPath") if kind == RULE_TYPE else None,
                    enabled=_enabled(props, where),
                    where=at,
                )
            )
    return found


def _schedule(*, where: str, **fields: Any) -> Schedule:
    for key in ("expression", "timezone", "input", "input_path", "name"):
        if fields[key] is not None and not isinstance(fields[key], str):
            raise ValidationError(f"{where}: {key} must be a string, got {short_repr(fields[key])}")
    schedule = Schedule(source=where, **fields)
    schedule.check()
    return schedule


def _enabled(props: Mapping[str, Any], where: str) -> bool:
    enabled = props.get("Enabled", True)
    state = props.get("State")
    if not isinstance(enabled, bool):
        raise ValidationError(f"{where}.Enabled must be true or false")
    if state is None:
        return enabled
    if state not in ("ENABLED", "DISABLED"):
        raise ValidationError(f"{where}.State must be ENABLED or DISABLED, got {short_repr(state)}")
    return enabled and state == "ENABLED"


def _function_of(arn: Any, functions: Mapping[str, str]) -> str | None:
    """The function a target's Arn names: a !GetAtt Fn.Arn (resolved to its ARN), a !Ref, a name."""
    if not isinstance(arn, str):
        return None
    if arn in functions:
        return functions[arn]
    name = arn.split(":function:", 1)[1].split(":", 1)[0] if ":function:" in arn else arn
    return name if name in functions.values() else None


def _warn_ignored(props: Mapping[str, Any], known: set[str], where: str, warnings: list[str]) -> None:
    ignored = sorted(str(k) for k in props if k not in known)
    if ignored:
        warnings.append(f"{where}: not supported by faas, ignored: {', '.join(ignored)}")
