import json

import requests  # noqa: F401  (from requirements.txt, installed at deploy as `sam build` does)


def lambda_handler(event, context):
    """The handler `sam init` writes, answering on both APIs: the event's shape says which
    one called (payload format 2.0 has "version": "2.0" and pathParameters from the route)."""
    name = (event.get("pathParameters") or {}).get("name", "world")
    api = "HttpApi" if event.get("version") == "2.0" else "Api"
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"message": f"hello {name}", "api": api}),
    }
