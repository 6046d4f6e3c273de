"""Reads a table's stream with boto3's dynamodbstreams client. Prints a JSON summary."""
import json
import sys

import boto3

endpoint, table = sys.argv[1], sys.argv[2]
kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="local", aws_secret_access_key="local")
arn = boto3.client("dynamodb", **kw).describe_table(TableName=table)["Table"]["LatestStreamArn"]
streams = boto3.client("dynamodbstreams", **kw)
listed = [s["StreamArn"] for s in streams.list_streams(TableName=table)["Streams"]]
described = streams.describe_stream(StreamArn=arn)["StreamDescription"]
shard = described["Shards"][0]["ShardId"]
iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
records = []
while True:
    page = streams.get_records(ShardIterator=iterator, Limit=3)
    records.extend(page["Records"])
    if not page["Records"]:
        break
    iterator = page["NextShardIterator"]
latest = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")["ShardIterator"]
print(json.dumps({
    "arn": arn,
    "listed": listed,
    "view": described["StreamViewType"],
    "status": described["StreamStatus"],
    "events": [[r["eventName"], r["dynamodb"]["Keys"]["pk"]["S"]] for r in records],
    "ordered": [r["dynamodb"]["SequenceNumber"] for r in records] == sorted(r["dynamodb"]["SequenceNumber"] for r in records),
    "afterLatest": len(streams.get_records(ShardIterator=latest)["Records"]),
}))
