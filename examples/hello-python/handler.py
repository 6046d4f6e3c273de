import json
import os


def hello(event, context):
    params = event.get("queryStringParameters") or {}
    print("hello from python", context.aws_request_id)
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({
            "message": "%s, %s!" % (os.environ.get("GREETING"), params.get("name", "world")),
            "function": context.function_name,
            "memory": context.memory_limit_in_mb,
            "remainingMs": context.get_remaining_time_in_millis(),
            "version": event.get("version", "1.0"),
            "runtime": os.environ.get("AWS_EXECUTION_ENV"),
        }),
    }


def fail(event, context):
    raise ValueError("python says no")
