import json


def get_item(event, context):
    item_id = event["pathParameters"]["id"]
    return {"statusCode": 200, "body": json.dumps({"id": item_id, "path": event["path"]})}
