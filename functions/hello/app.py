import os


def handler(event, context):
    """Greets whoever ?name= or {"name": ...} names; the greeting comes from function.yaml."""
    params = event.get("queryStringParameters") or {}
    name = params.get("name") or event.get("name") or "world"
    return {"message": f"{os.environ['GREETING']}, {name}!"}
