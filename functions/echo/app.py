import os


def handler(event, context):
    """Returns the event and what the context says, to see exactly what a function receives."""
    remaining = context.get_remaining_time_in_millis()
    cc = context.client_context
    return {
        "event": event,
        "context": {
            "aws_request_id": context.aws_request_id,
            "function_name": context.function_name,
            "function_version": context.function_version,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "invoked_function_arn": context.invoked_function_arn,
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
            "remaining_time_in_millis": remaining,
            "client_context": None if cc is None else {"custom": cc.custom, "env": cc.env},
            "identity": None if context.identity is None else {
                "cognito_identity_id": context.identity.cognito_identity_id,
                "cognito_identity_pool_id": context.identity.cognito_identity_pool_id,
            },
        },
        "environment": {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "LAMBDA_", "_HANDLER", "TZ"))},
    }
