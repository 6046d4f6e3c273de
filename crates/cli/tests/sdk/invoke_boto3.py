"""Drives sylph dev's Lambda Invoke API with the real boto3 client and prints a JSON summary."""
import base64
import json
import sys

import boto3
from botocore.config import Config

endpoint = sys.argv[1]
client = boto3.client(
    "lambda",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="local",
    aws_secret_access_key="local",
    config=Config(retries={"max_attempts": 1}),
)
out = {}

ok = client.invoke(
    FunctionName="context",
    Payload=json.dumps({"from": "boto3"}),
    LogType="Tail",
    ClientContext=base64.b64encode(json.dumps({"custom": {"who": "boto3"}}).encode()).decode(),
)
out["ok"] = {
    "status": ok["StatusCode"],
    "functionError": ok.get("FunctionError"),
    "payload": json.loads(ok["Payload"].read()),
    "log": base64.b64decode(ok.get("LogResult", "")).decode(),
}

timed_out = client.invoke(FunctionName="slow", Payload=b"{}")
out["timeout"] = {
    "status": timed_out["StatusCode"],
    "functionError": timed_out.get("FunctionError"),
    "payload": json.loads(timed_out["Payload"].read()),
}

try:
    client.invoke(FunctionName="no-such-function", Payload=b"{}")
    out["missing"] = {"error": None}
except client.exceptions.ResourceNotFoundException as e:
    out["missing"] = {"error": "ResourceNotFoundException", "message": str(e)}

try:
    client.invoke(FunctionName="context", Payload=b"{not json")
    out["badJson"] = {"error": None}
except client.exceptions.InvalidRequestContentException as e:
    out["badJson"] = {"error": "InvalidRequestContentException", "message": str(e)}

print(json.dumps(out))
