"""Sylph's WSGI adapter: serves a WSGI application (Flask, Django, ...) behind API Gateway
events, doing the job serverless-wsgi's handler does on Lambda. The application is named by
SYLPH_WSGI_APP as `module.attribute` (the service's `custom.wsgi.app`); a function whose handler
is `wsgi_handler.handler` is pointed here by Sylph.

REST API events (payload 1.0) and HTTP API events (payload 2.0) both work; the answer has the
matching shape. Bodies that are not text travel base64-encoded both ways.
"""

import base64
import importlib
import io
import os
import sys
from urllib.parse import quote, urlencode

_app = None

# Content types whose bodies are handed back as text rather than base64.
_TEXT_TYPES = ("text/", "application/json", "application/javascript", "application/xml", "+json", "+xml")


def _application():
    global _app
    if _app is None:
        target = os.environ.get("SYLPH_WSGI_APP", "")
        module_name, _, attribute = target.rpartition(".")
        if not module_name or not attribute:
            raise RuntimeError(
                "SYLPH_WSGI_APP must name the WSGI application as module.attribute (custom.wsgi.app), got %r" % target
            )
        # serverless-wsgi also takes a path (`src/api.app`): its folder joins sys.path.
        folder, _, module_name = module_name.rpartition("/")
        if folder:
            root = os.environ.get("LAMBDA_TASK_ROOT", os.getcwd())
            sys.path.insert(0, os.path.join(root, folder))
        _app = getattr(importlib.import_module(module_name), attribute)
    return _app


def _body_bytes(event):
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return base64.b64decode(body)
    return body.encode("utf-8") if isinstance(body, str) else body


def _add_headers(environ, headers):
    for name, value in headers.items():
        key = name.upper().replace("-", "_")
        if key == "CONTENT_TYPE":
            environ["CONTENT_TYPE"] = value
        elif key == "CONTENT_LENGTH":
            continue
        else:
            environ["HTTP_" + key] = value


def _base_environ(event, context, method, path, query, headers, body, script_name, source_ip):
    host = headers.get("host") or headers.get("Host") or "localhost"
    server_name, _, port = host.partition(":")
    environ = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": server_name,
        "SERVER_PORT": headers.get("x-forwarded-port") or headers.get("X-Forwarded-Port") or port or "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": source_ip or "127.0.0.1",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": headers.get("x-forwarded-proto") or headers.get("X-Forwarded-Proto") or "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        # What serverless-wsgi hands applications, which some read.
        "serverless.event": event,
        "serverless.context": context,
        "API_GATEWAY_AUTHORIZER": (event.get("requestContext") or {}).get("authorizer"),
    }
    _add_headers(environ, headers)
    return environ


def _environ_v1(event, context):
    headers = event.get("headers") or {}
    multi = event.get("multiValueQueryStringParameters") or {}
    pairs = [(k, v) for k, values in multi.items() for v in values]
    if not pairs:
        pairs = list((event.get("queryStringParameters") or {}).items())
    request_context = event.get("requestContext") or {}
    stage = request_context.get("stage")
    # URLs served under /{stage}: the application's own URLs must carry it too.
    script_name = "/" + stage if stage and request_context.get("path", "").startswith("/" + stage) else ""
    return _base_environ(
        event,
        context,
        event.get("httpMethod", "GET"),
        event.get("path") or "/",
        urlencode(pairs, quote_via=quote),
        headers,
        _body_bytes(event),
        script_name,
        (request_context.get("identity") or {}).get("sourceIp"),
    )


def _environ_v2(event, context):
    headers = dict(event.get("headers") or {})
    if event.get("cookies"):
        headers["cookie"] = "; ".join(event["cookies"])
    http = (event.get("requestContext") or {}).get("http") or {}
    return _base_environ(
        event,
        context,
        http.get("method", "GET"),
        event.get("rawPath") or "/",
        event.get("rawQueryString") or "",
        headers,
        _body_bytes(event),
        "",
        http.get("sourceIp"),
    )


def _is_text(headers):
    content_type = ""
    for name, value in headers:
        if name.lower() == "content-type":
            content_type = value.lower()
    return content_type == "" or any(t in content_type for t in _TEXT_TYPES)


def handler(event, context):
    app = _application()
    v2 = event.get("version") == "2.0"
    environ = _environ_v2(event, context) if v2 else _environ_v1(event, context)
    started = {}
    chunks = []

    def start_response(status, headers, exc_info=None):
        if exc_info and started:
            raise exc_info[1].with_traceback(exc_info[2])
        started["status"] = int(status.split(" ", 1)[0])
        started["headers"] = list(headers)
        return chunks.append

    result = app(environ, start_response)
    try:
        for chunk in result:
            chunks.append(chunk)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    body = b"".join(chunks)
    headers = started.get("headers", [])
    if _is_text(headers):
        try:
            text, encoded = body.decode("utf-8"), False
        except UnicodeDecodeError:
            text, encoded = base64.b64encode(body).decode("ascii"), True
    else:
        text, encoded = base64.b64encode(body).decode("ascii"), True
    response = {"statusCode": started.get("status", 500), "body": text, "isBase64Encoded": encoded}
    if v2:
        joined = {}
        cookies = []
        for name, value in headers:
            if name.lower() == "set-cookie":
                cookies.append(value)
            elif name.lower() in joined:
                joined[name.lower()] += ", " + value
            else:
                joined[name.lower()] = value
        response["headers"] = joined
        if cookies:
            response["cookies"] = cookies
    else:
        multi = {}
        for name, value in headers:
            multi.setdefault(name, []).append(value)
        response["multiValueHeaders"] = multi
    return response
