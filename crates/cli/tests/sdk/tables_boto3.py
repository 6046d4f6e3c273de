"""boto3 against `sylph tables`: DynamoDB's number semantics, binary and sets, LSIs, parallel scan,
errors. Prints a JSON summary for the Rust end-to-end test."""
import json
import sys
from decimal import Decimal

import boto3
from boto3.dynamodb.conditions import Attr, Key
from botocore.config import Config

endpoint = sys.argv[1]
kwargs = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="l", aws_secret_access_key="l",
              config=Config(retries={"max_attempts": 1}))
ddb = boto3.resource("dynamodb", **kwargs)
client = boto3.client("dynamodb", **kwargs)
out = {}

table = ddb.create_table(
    TableName="metrics",
    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    AttributeDefinitions=[
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "N"},
        {"AttributeName": "label", "AttributeType": "S"},
    ],
    LocalSecondaryIndexes=[{
        "IndexName": "byLabel",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "label", "KeyType": "RANGE"}],
        "Projection": {"ProjectionType": "ALL"},
    }],
    ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
)
table.wait_until_exists()

big = Decimal("12345678901234567890123456789012345678")
values = ["-10", "-1.5", "0", "0.25", "2", "10", "100.5"]
for i, v in enumerate(values):
    table.put_item(Item={"pk": "p", "sk": Decimal(v), "label": "l%d" % (len(values) - i), "blob": bytes([i, 0, 255]),
                         "set": {"a", "b"}, "big": big})
resp = table.query(KeyConditionExpression=Key("pk").eq("p"))
out["order"] = [str(i["sk"]) for i in resp["Items"]]
item = table.get_item(Key={"pk": "p", "sk": Decimal("0.25")})["Item"]
out["big"] = str(item["big"])
out["blob"] = list(item["blob"].value)
out["set"] = sorted(item["set"])
resp = table.query(IndexName="byLabel", KeyConditionExpression=Key("pk").eq("p") & Key("label").begins_with("l"), Limit=3)
out["lsi"] = [i["label"] for i in resp["Items"]]
out["lsiLastKey"] = sorted(resp["LastEvaluatedKey"].keys())
table.update_item(Key={"pk": "p", "sk": Decimal("2")}, UpdateExpression="ADD big :one", ExpressionAttributeValues={":one": Decimal(1)})
try:
    table.update_item(Key={"pk": "p", "sk": Decimal("2")}, UpdateExpression="ADD big :x",
                      ExpressionAttributeValues={":x": Decimal("99999999999999999999999999999999999999")})
    out["overflow"] = None
except client.exceptions.ClientError as e:
    out["overflow"] = e.response["Error"]["Message"]
segments = []
for s in range(3):
    segments.append(table.scan(Segment=s, TotalSegments=3)["Count"])
out["segments"] = sum(segments)
out["scanFilter"] = table.scan(FilterExpression=Attr("sk").between(Decimal(0), Decimal(10)))["Count"]

errors = {}
try:
    table.put_item(Item={"pk": "", "sk": 1})
except client.exceptions.ClientError as e:
    errors["emptyKey"] = e.response["Error"]["Code"]
try:
    table.put_item(Item={"pk": "x", "sk": 1, "big": "y" * (401 * 1024)})
except client.exceptions.ClientError as e:
    errors["tooBig"] = e.response["Error"]["Message"]
try:
    client.get_item(TableName="metrics", Key={"pk": {"S": "p"}})
except client.exceptions.ClientError as e:
    errors["badKey"] = e.response["Error"]["Message"]
try:
    ddb.create_table(TableName="metrics", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
except client.exceptions.ResourceInUseException as e:
    errors["inUse"] = "ResourceInUseException"
try:
    table.put_item(Item={"pk": "p", "sk": Decimal("0")}, ConditionExpression="attribute_not_exists(pk)",
                   ReturnValuesOnConditionCheckFailure="ALL_OLD")
except client.exceptions.ConditionalCheckFailedException as e:
    errors["conditionalItem"] = sorted(e.response.get("Item", {}).keys())
out["errors"] = errors
client.tag_resource(ResourceArn=table.table_arn, Tags=[{"Key": "team", "Value": "core"}])
out["tags"] = client.list_tags_of_resource(ResourceArn=table.table_arn)["Tags"]
out["pitr"] = client.describe_continuous_backups(TableName="metrics")["ContinuousBackupsDescription"]["ContinuousBackupsStatus"]
print(json.dumps(out))
