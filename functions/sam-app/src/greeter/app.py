import os


def handler(event, context):
    name = (event or {}).get("name", "world")
    return {
        "message": f"{os.environ['GREETING']}, {name}!",
        "stage": os.environ["STAGE"],
        "app": os.environ["APP_NAME"],
        "memory": context.memory_limit_in_mb,
    }
