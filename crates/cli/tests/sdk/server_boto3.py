"""Drives a sylph server with boto3 and a key made by `sylph keys`: invokes a deployed function
and reads its table. Prints a JSON summary for the Rust end-to-end test."""
import json
import sys

import boto3
from botocore.config import Config

endpoint, key_id, secret, function, table = sys.argv[1:6]
session = boto3.session.Session(aws_access_key_id=key_id, aws_secret_access_key=secret, region_name="us-east-1")
config = Config(retries={"max_attempts": 1})
invoked = session.client("lambda", endpoint_url=endpoint, config=config).invoke(FunctionName=function, Payload=b"{}")
items = session.resource("dynamodb", endpoint_url=endpoint, config=config).Table(table).scan()["Items"]
print(json.dumps({
    "invoke": {"status": invoked["StatusCode"], "functionError": invoked.get("FunctionError"), "payload": json.loads(invoked["Payload"].read())},
    "items": [{k: (str(v) if not isinstance(v, (str, bool)) else v) for k, v in i.items()} for i in items],
}))
