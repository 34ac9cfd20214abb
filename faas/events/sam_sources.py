"""What a SAM or CloudFormation template says about queues and destinations: Events of type
SQS, AWS::Lambda::EventSourceMapping, the function property EventInvokeConfig and
AWS::Lambda::EventInvokeConfig. Read in the CLI (faas/deploy/sam.py) and sent to the gateway's
management API once the functions are deployed (put_event_sources below)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from faas.errors import ValidationError

MAPPING_TYPE = "AWS::Lambda::EventSourceMapping"
INVOKE_CONFIG_TYPE = "AWS::Lambda::EventInvokeConfig"
QUEUE_TYPE = "AWS::SQS::Queue"
TYPES = (MAPPING_TYPE, INVOKE_CONFIG_TYPE, QUEUE_TYPE)
MAPPING_KEYS = ("BatchSize", "MaximumBatchingWindowInSeconds", "FunctionResponseTypes", "Enabled", "ScalingConfig")

Value = Callable[[Any, str], Any]


def _queue_name(logical_id: str, resource: Mapping[str, Any]) -> str:
    name = (resource.get("Properties") or {}).get("QueueName")
    return name if isinstance(name, str) else str(logical_id)


def queue_attributes(resources: Mapping[str, Any], account: str) -> dict[str, str]:
    """!GetAtt Q.Arn / Q.QueueName of the template's AWS::SQS::Queue resources: the ARN of the
    queue of that name on the SQS endpoint faas polls (faas creates no queue)."""
    out: dict[str, str] = {}
    for lid, res in resources.items():
        if isinstance(res, Mapping) and res.get("Type") == QUEUE_TYPE:
            name = _queue_name(str(lid), res)
            out[f"{lid}.Arn"] = f"arn:aws:sqs:us-east-1:{account}:{name}"
            out[f"{lid}.QueueName"] = name
    return out


def _function_name(raw: Any, functions: Mapping[str, str], where: str) -> str | None:
    """A FunctionName (!Ref Fn, a name, an ARN) to one of the template's function names."""
    text = raw if isinstance(raw, str) else None
    if text is None:
        return None
    if ":function:" in text:
        text = text.split(":function:", 1)[1].split(":", 1)[0]
    if text in functions:
        return functions[text]
    if text in functions.values():
        return text
    raise ValidationError(f"{where}: {text!r} is not a function of this template")


def _mapping(name: str, props: Mapping[str, Any], source: Any, where: str, warnings: list[str]) -> dict[str, Any]:
    if not isinstance(source, str):
        raise ValidationError(f"{where}: the queue's ARN must be a string, got {source!r}")
    out: dict[str, Any] = {"FunctionName": name, "EventSourceArn": source}
    for key in MAPPING_KEYS:
        if props.get(key) is not None:
            out[key] = props[key]
    ignored = sorted(set(props) - {*MAPPING_KEYS, "Queue", "EventSourceArn", "FunctionName"})
    if ignored:
        warnings.append(f"{where}: not supported by faas, ignored: {', '.join(ignored)}")
    return out


def _invoke_config(props: Mapping[str, Any], functions: Mapping[str, str], where: str) -> dict[str, Any]:
    """SAM's EventInvokeConfig (DestinationConfig.OnX: {Type, Destination}) as the management
    API's PutFunctionEventInvokeConfig body; a Lambda destination may name a template function."""
    out: dict[str, Any] = {}
    for key in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds"):
        if props.get(key) is not None:
            out[key] = props[key]
    destinations = props.get("DestinationConfig") or {}
    if not isinstance(destinations, Mapping):
        raise ValidationError(f"{where}.DestinationConfig must be a map")
    config: dict[str, Any] = {}
    for kind in ("OnSuccess", "OnFailure"):
        entry = destinations.get(kind)
        if not isinstance(entry, Mapping) or entry.get("Destination") is None:
            continue
        target = entry["Destination"]
        if isinstance(target, str) and entry.get("Type") in (None, "Lambda") and not target.startswith("arn:aws:sqs:"):
            target = _function_name(target, functions, f"{where}.DestinationConfig.{kind}") or target
        config[kind] = {"Destination": target}
    if config:
        out["DestinationConfig"] = config
    return out


def read(
    resources: Mapping[str, Any], functions: Mapping[str, str], value: Value, warnings: list[str]
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """(event source mappings, event invoke configs by function name) of one stack.
    functions: logical id -> name of the functions deployed."""
    mappings: list[dict[str, Any]] = []
    configs: dict[str, dict[str, Any]] = {}
    for logical_id, name in functions.items():
        props = (resources.get(logical_id) or {}).get("Properties") or {}
        events = props.get("Events") or {}
        for event_id, event in events.items() if isinstance(events, Mapping) else ():
            if not isinstance(event, Mapping) or event.get("Type") != "SQS":
                continue
            where = f"{logical_id}.Events.{event_id}"
            eprops = value(event.get("Properties") or {}, f"{where}.Properties")
            mappings.append(_mapping(name, eprops, eprops.get("Queue"), where, warnings))
        if props.get("EventInvokeConfig") is not None:
            where = f"{logical_id}.EventInvokeConfig"
            configs[name] = _invoke_config(value(props["EventInvokeConfig"], where), functions, where)
    for logical_id, resource in resources.items():
        kind = resource.get("Type") if isinstance(resource, Mapping) else None
        if kind == QUEUE_TYPE:
            warnings.append(
                f"{logical_id}: faas creates no queues; create {_queue_name(str(logical_id), resource)} "
                "on your SQS endpoint (AWS_ENDPOINT_URL_SQS)"
            )
        if kind not in (MAPPING_TYPE, INVOKE_CONFIG_TYPE):
            continue
        props = value(resource.get("Properties") or {}, f"{logical_id}.Properties")
        target = _function_name(props.get("FunctionName"), functions, f"{logical_id}.FunctionName")
        if target is None:
            raise ValidationError(f"{logical_id}.FunctionName must name a function of this template")
        if kind == MAPPING_TYPE:
            mappings.append(_mapping(target, props, props.get("EventSourceArn"), logical_id, warnings))
        else:
            configs[target] = _invoke_config(props, functions, logical_id)
    return mappings, configs


def put_event_sources(client: Any, mappings: list[dict[str, Any]], configs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Send a template's mappings and invoke configs to the gateway (client: GatewayClient):
    a mapping of the same queue and function is updated rather than made twice. What was done,
    one line each."""
    done: list[str] = []
    for name, config in configs.items():
        client.management("PUT", f"/2019-09-25/functions/{name}/event-invoke-config", dict(config))
        done.append(f"event invoke config of {name}")
    for mapping in mappings:
        found = client.management(
            "GET", "/2015-03-31/event-source-mappings/", None, params={"FunctionName": mapping["FunctionName"]}
        )["EventSourceMappings"]
        same = [m for m in found if m["EventSourceArn"] == mapping["EventSourceArn"]]
        if same:
            body = {k: v for k, v in mapping.items() if k != "EventSourceArn"}
            client.management("PUT", f"/2015-03-31/event-source-mappings/{same[0]['UUID']}", body)
        else:
            client.management("POST", "/2015-03-31/event-source-mappings/", mapping)
        done.append(f"queue {mapping['EventSourceArn']} -> {mapping['FunctionName']}")
    return done
