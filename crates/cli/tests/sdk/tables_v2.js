// aws-sdk v2 (DocumentClient) against `sylph tables`, unchanged but for the endpoint.
// Prints a JSON summary for the Rust end-to-end test.
'use strict';
const AWS = require('aws-sdk');

const endpoint = process.argv[2];
const cfg = { endpoint, region: 'us-east-1', accessKeyId: 'local', secretAccessKey: 'local', maxRetries: 0 };
const ddb = new AWS.DynamoDB(cfg);
const doc = new AWS.DynamoDB.DocumentClient({ service: ddb });

async function main() {
  const out = {};
  await ddb.createTable({
    TableName: 'todos-v2',
    KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
    AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
    BillingMode: 'PAY_PER_REQUEST',
  }).promise();
  await ddb.waitFor('tableExists', { TableName: 'todos-v2' }).promise();
  const now = Date.now();
  await doc.put({ TableName: 'todos-v2', Item: { id: 'a', text: 'first', checked: false, createdAt: now, tags: doc.createSet(['x', 'y']) } }).promise();
  await doc.put({ TableName: 'todos-v2', Item: { id: 'b', text: 'second', checked: true, createdAt: now + 1 } }).promise();
  out.get = (await doc.get({ TableName: 'todos-v2', Key: { id: 'a' } }).promise()).Item;
  out.get.tags = out.get.tags.values;
  const updated = await doc.update({
    TableName: 'todos-v2',
    Key: { id: 'a' },
    ExpressionAttributeNames: { '#todo_text': 'text' },
    ExpressionAttributeValues: { ':text': 'edited', ':checked': true, ':updatedAt': now + 5, ':zero': 0, ':one': 1 },
    UpdateExpression: 'SET #todo_text = :text, checked = :checked, updatedAt = :updatedAt, edits = if_not_exists(edits, :zero) + :one',
    ReturnValues: 'ALL_NEW',
  }).promise();
  out.updated = updated.Attributes;
  out.updated.tags = out.updated.tags.values;
  out.scanCount = (await doc.scan({ TableName: 'todos-v2' }).promise()).Count;
  try {
    await doc.put({ TableName: 'todos-v2', Item: { id: 'a' }, ConditionExpression: 'attribute_not_exists(id)' }).promise();
    out.conditional = 'no error';
  } catch (e) {
    out.conditional = e.code;
  }
  await doc.batchWrite({ RequestItems: { 'todos-v2': [
    { PutRequest: { Item: { id: 'c', text: 'third' } } },
    { DeleteRequest: { Key: { id: 'b' } } },
  ] } }).promise();
  const batch = await doc.batchGet({ RequestItems: { 'todos-v2': { Keys: [{ id: 'a' }, { id: 'b' }, { id: 'c' }] } } }).promise();
  out.batchGet = batch.Responses['todos-v2'].map((i) => i.id).sort();
  await doc.delete({ TableName: 'todos-v2', Key: { id: 'a' } }).promise();
  out.afterDelete = (await doc.get({ TableName: 'todos-v2', Key: { id: 'a' } }).promise()).Item || null;
  try {
    await doc.get({ TableName: 'missing-table', Key: { id: 'a' } }).promise();
  } catch (e) {
    out.missingTable = e.code;
  }
  out.tables = (await ddb.listTables().promise()).TableNames;
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
