"""Drives sylph's SQS API with boto3 (and the resource interface). Prints a JSON summary."""
import json
import sys

import boto3

endpoint, prefix = sys.argv[1], sys.argv[2]
kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="local", aws_secret_access_key="local")
sqs = boto3.client("sqs", **kw)
out = {}
url = sqs.create_queue(QueueName=f"{prefix}-py.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
for i, group in enumerate(["a", "b", "a", "a", "b"]):
    sqs.send_message(QueueUrl=url, MessageBody=f"{group}{i}", MessageGroupId=group, MessageDeduplicationId=str(i))
# The same deduplication id again within five minutes: accepted, not enqueued.
sqs.send_message(QueueUrl=url, MessageBody="dup", MessageGroupId="a", MessageDeduplicationId="0")
seen = []
for _ in range(10):
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=["All"])
    msgs = got.get("Messages", [])
    if not msgs:
        break
    for m in msgs:
        seen.append([m["Body"], m["Attributes"]["MessageGroupId"], m["Attributes"]["SequenceNumber"]])
    sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)])
out["seen"] = seen
queue = boto3.resource("sqs", **kw).Queue(url)
queue.send_message(MessageBody="via resource", MessageGroupId="r", MessageDeduplicationId="r1")
out["resource"] = [m.body for m in queue.receive_messages(WaitTimeSeconds=1)]
try:
    sqs.get_queue_url(QueueName=f"{prefix}-nope")
except sqs.exceptions.QueueDoesNotExist as e:
    out["missing"] = e.response["Error"]["Code"]
sqs.delete_queue(QueueUrl=url)
print(json.dumps(out))
