"""Sylph's Python runtime client.

Loads the function's handler the way the official awslambdaric does and serves it over the
Lambda Runtime API. Only the standard library is used, so it starts fast.
"""
import decimal
import http.client
import importlib
import json
import logging
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


class HttpTransport:
    """The HTTP Lambda Runtime API."""

    def next(self):
        _, headers, body = call("GET", "/invocation/next")
        return headers, body

    def respond(self, request_id, payload):
        call("POST", "/invocation/%s/response" % request_id, payload, {"Content-Type": "application/json"})

    def fail(self, request_id, error_type, payload):
        path = "/init/error" if request_id is None else "/invocation/%s/error" % request_id
        call("POST", path, payload, {"Content-Type": "application/json", "Lambda-Runtime-Function-Error-Type": error_type})


class PipeTransport:
    """Sylph's socketpair on an inherited fd: length-prefixed frames (crates/runtime/src/pipe.rs)."""

    def __init__(self, fd):
        import socket
        import struct
        self._struct = struct
        self._sock = socket.socket(fileno=fd)

    def _send(self, kind, *parts):
        body = b"".join(parts)
        self._sock.sendall(self._struct.pack("<IB", len(body) + 1, ord(kind)) + body)

    def _str(self, s):
        b = (s or "").encode()
        return self._struct.pack("<H", len(b)) + b

    def _read_exact(self, n):
        chunks, left = [], n
        while left:
            chunk = self._sock.recv(left)
            if not chunk:
                sys.exit(0)  # Sylph closed the channel: the instance is being stopped.
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def ready(self):
        """Tell Sylph preloading is done, so a cold start may take this runtime."""
        self._send("W")

    def specialization(self):
        (n,) = self._struct.unpack("<I", self._read_exact(4))
        frame = self._read_exact(n)
        return json.loads(frame[1:])

    def next(self):
        self._send("N")
        (n,) = self._struct.unpack("<I", self._read_exact(4))
        frame = self._read_exact(n)
        (header_len,) = self._struct.unpack_from("<I", frame, 1)
        header = json.loads(frame[5:5 + header_len])
        headers = {
            "lambda-runtime-aws-request-id": header["requestId"],
            "lambda-runtime-deadline-ms": str(header["deadlineMs"]),
            "lambda-runtime-invoked-function-arn": header["invokedFunctionArn"],
            "lambda-runtime-trace-id": header.get("traceId"),
        }
        if header.get("clientContext"):
            headers["lambda-runtime-client-context"] = header["clientContext"]
        if header.get("cognitoIdentity"):
            headers["lambda-runtime-cognito-identity"] = header["cognitoIdentity"]
        return headers, frame[5 + header_len:]

    def respond(self, request_id, payload):
        self._send("R", self._str(request_id), payload)

    def fail(self, request_id, error_type, payload):
        if request_id is None:
            self._send("I", self._str(error_type), payload)
        else:
            self._send("E", self._str(request_id), self._str(error_type), payload)


TRANSPORT = PipeTransport(int(os.environ["SYLPH_RUNTIME_FD"])) if os.environ.get("SYLPH_RUNTIME_FD") else HttpTransport()


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


def post_error(request_id, exc, error_type=None):
    """Report an error for `request_id`, or the init error when it is None."""
    body = error_body(exc, error_type)
    print("[ERROR] %s: %s" % (body["errorType"], body["errorMessage"]), file=sys.stderr, flush=True)
    TRANSPORT.fail(request_id, body["errorType"], json.dumps(body).encode())


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


# The invocation being served, for the log lines; Lambda's runtime keeps the last one between
# invocations and has none (an empty field) before the first.
_CURRENT = {"request_id": ""}


class _RequestIdFilter(logging.Filter):
    def filter(self, record):
        record.aws_request_id = _CURRENT["request_id"]
        return True


class _JsonFormatter(logging.Formatter):
    """Lambda's JSON log records: timestamp (to the second, UTC), level, message, logger, the
    error's fields when one is logged, requestId, then every `extra=` field; None values left
    out."""

    RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "aws_request_id"}

    def format(self, record):
        out = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
            "level": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
        }
        if record.exc_info and record.exc_info[0]:
            out["stackTrace"] = traceback.format_tb(record.exc_info[2])
            out["errorType"] = record.exc_info[0].__name__
            out["errorMessage"] = str(record.exc_info[1])
            out["location"] = "%s:%s:%s" % (record.pathname, record.funcName, record.lineno)
        out["requestId"] = record.aws_request_id
        for key, value in record.__dict__.items():
            if key not in self.RESERVED and key not in out:
                out[key] = value
        out = {k: v for k, v in out.items() if v is not None}
        return json.dumps(out, ensure_ascii=False, default=str) + "\n"


def setup_logging():
    """As Lambda's Python runtime does: one handler on the root logger writing Lambda's text
    format to stdout (`[LEVEL]\t<UTC time>.<ms>Z\t<request id>\t<message>`), so that a handler's
    `logging.getLogger().setLevel(logging.INFO); logger.info(...)` prints as on Lambda. The root
    level comes from AWS_LAMBDA_LOG_LEVEL (TRACE counts as DEBUG), else stays Python's WARNING;
    `print` is left plain."""
    logging.Formatter.converter = time.gmtime
    handler = logging.StreamHandler(sys.stdout)
    handler.terminator = ""
    if os.environ.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
                "%Y-%m-%dT%H:%M:%S",
            )
        )
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "").upper()
    level = "DEBUG" if level == "TRACE" else level
    if level in ("DEBUG", "INFO", "WARN", "WARNING", "ERROR", "CRITICAL", "FATAL"):
        root.setLevel(level)


def become_function():
    """A pre-started runtime: import what every function imports anyway, then wait to be told
    which function to become (its environment and folder)."""
    try:
        import boto3  # noqa: F401 - preloaded for the function
    except ImportError:
        pass
    TRANSPORT.ready()
    spec = TRANSPORT.specialization()
    os.environ.update(spec["env"])
    os.environ.pop("SYLPH_PREWARM", None)
    os.chdir(spec["cwd"])


def main():
    if os.environ.get("SYLPH_PREWARM"):
        become_function()
    setup_logging()
    try:
        handler = load_handler()
    except HandlerError as e:
        post_error(None, e, e.error_type)
        sys.exit(1)
    except Exception as e:  # noqa: BLE001 - any failure while importing user code
        post_error(None, e, "Runtime.ImportModuleError")
        sys.exit(1)
    while True:
        headers, body = TRANSPORT.next()
        request_id = headers.get("lambda-runtime-aws-request-id")
        _CURRENT["request_id"] = request_id or ""
        trace = headers.get("lambda-runtime-trace-id")
        if trace:
            os.environ["_X_AMZN_TRACE_ID"] = trace
        try:
            event = json.loads(body) if body else None
        except ValueError as e:
            post_error(request_id, e, "Runtime.UnmarshalError")
            continue
        try:
            result = handler(event, Context(headers))
        except Exception as e:  # noqa: BLE001 - the function's own error is reported, not raised
            post_error(request_id, e)
            continue
        try:
            payload = json.dumps(result, cls=LambdaJSONEncoder).encode()
        except (TypeError, ValueError) as e:
            post_error(request_id, e, "Runtime.MarshalError")
            continue
        TRANSPORT.respond(request_id, payload)


if __name__ == "__main__":
    main()
