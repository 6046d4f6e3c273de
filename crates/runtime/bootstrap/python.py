"""Sylph's Python runtime client.

Loads the function's handler the way the official awslambdaric does and serves it over the
Lambda Runtime API. Only the standard library is used, so it starts fast.
"""
import decimal
import http.client
import importlib
import json
import os
import sys
import time
import traceback

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
BASE = "/2018-06-01/runtime"
_conn = None


def call(method, path, body=None, headers=None):
    global _conn
    for attempt in (0, 1):
        if _conn is None:
            _conn = http.client.HTTPConnection(API)
        try:
            _conn.request(method, BASE + path, body=body, headers=headers or {})
            res = _conn.getresponse()
            data = res.read()
            return res.status, {k.lower(): v for k, v in res.getheaders()}, data
        except (ConnectionError, http.client.HTTPException):
            _conn = None
            if attempt:
                raise


class LambdaJSONEncoder(json.JSONEncoder):
    def default(self, o):
        if isinstance(o, decimal.Decimal):
            return int(o) if o == o.to_integral_value() else float(o)
        if isinstance(o, (bytes, bytearray)):
            return o.decode("utf-8", "replace")
        return super().default(o)


def error_body(exc, error_type=None):
    etype = error_type or type(exc).__name__
    return {
        "errorMessage": str(exc),
        "errorType": etype,
        "requestId": "",
        "stackTrace": traceback.format_list(traceback.extract_tb(exc.__traceback__)),
    }


def post_error(path, exc, error_type=None):
    body = error_body(exc, error_type)
    print("[ERROR] %s: %s" % (body["errorType"], body["errorMessage"]), file=sys.stderr, flush=True)
    call("POST", path, json.dumps(body).encode(), {
        "Content-Type": "application/json",
        "Lambda-Runtime-Function-Error-Type": body["errorType"],
    })


class Context:
    def __init__(self, headers):
        self.aws_request_id = headers.get("lambda-runtime-aws-request-id")
        self.invoked_function_arn = headers.get("lambda-runtime-invoked-function-arn")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self._deadline_ms = int(headers.get("lambda-runtime-deadline-ms", "0"))
        self.client_context = _json_or_none(headers.get("lambda-runtime-client-context"))
        self.identity = _json_or_none(headers.get("lambda-runtime-cognito-identity"))

    def get_remaining_time_in_millis(self):
        return max(self._deadline_ms - int(time.time() * 1000), 0)


def _json_or_none(text):
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


class HandlerError(Exception):
    def __init__(self, error_type, message):
        super().__init__(message)
        self.error_type = error_type


def load_handler():
    handler = os.environ.get("_HANDLER", "")
    root = os.environ.get("LAMBDA_TASK_ROOT", os.getcwd())
    if root not in sys.path:
        sys.path.insert(0, root)
    module_path, _, func_name = handler.rpartition(".")
    if not module_path or not func_name:
        raise HandlerError("Runtime.MalformedHandlerName", "Bad handler '%s': expected module.function" % handler)
    module_name = module_path.replace("/", ".")
    try:
        module = importlib.import_module(module_name)
    except SyntaxError as e:
        raise HandlerError("Runtime.UserCodeSyntaxError", "Syntax error in module '%s': %s" % (module_name, e))
    except ImportError as e:
        raise HandlerError("Runtime.ImportModuleError", "Unable to import module '%s': %s" % (module_name, e))
    fn = getattr(module, func_name, None)
    if not callable(fn):
        raise HandlerError("Runtime.HandlerNotFound", "Handler '%s' missing on module '%s'" % (func_name, module_name))
    return fn


def main():
    try:
        handler = load_handler()
    except HandlerError as e:
        post_error("/init/error", e, e.error_type)
        sys.exit(1)
    except Exception as e:  # noqa: BLE001 - any failure while importing user code
        post_error("/init/error", e, "Runtime.ImportModuleError")
        sys.exit(1)
    while True:
        _, headers, body = call("GET", "/invocation/next")
        request_id = headers.get("lambda-runtime-aws-request-id")
        trace = headers.get("lambda-runtime-trace-id")
        if trace:
            os.environ["_X_AMZN_TRACE_ID"] = trace
        try:
            event = json.loads(body) if body else None
        except ValueError as e:
            post_error("/invocation/%s/error" % request_id, e, "Runtime.UnmarshalError")
            continue
        try:
            result = handler(event, Context(headers))
        except Exception as e:  # noqa: BLE001 - the function's own error is reported, not raised
            post_error("/invocation/%s/error" % request_id, e)
            continue
        try:
            payload = json.dumps(result, cls=LambdaJSONEncoder).encode()
        except (TypeError, ValueError) as e:
            post_error("/invocation/%s/error" % request_id, e, "Runtime.MarshalError")
            continue
        call("POST", "/invocation/%s/response" % request_id, payload, {"Content-Type": "application/json"})


if __name__ == "__main__":
    main()
