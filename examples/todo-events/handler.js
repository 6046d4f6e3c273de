'use strict';

// The AWS SDK v3 clients come with the runtime, as on Lambda.
const crypto = require('crypto');
const { DynamoDBClient } = require('@aws-sdk/client-dynamodb');
const { DynamoDBDocumentClient, PutCommand, UpdateCommand, GetCommand, ScanCommand, DeleteCommand } = require('@aws-sdk/lib-dynamodb');
const { SQSClient, SendMessageCommand } = require('@aws-sdk/client-sqs');

const db = DynamoDBDocumentClient.from(new DynamoDBClient({}));
const sqs = new SQSClient({});
const json = (statusCode, body) => ({ statusCode, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

module.exports.create = async (event) => {
  const { text } = JSON.parse(event.body || '{}');
  if (typeof text !== 'string' || text.trim() === '') {
    return json(400, { message: '`text` must be a non-empty string' });
  }
  const item = { id: crypto.randomUUID(), text, checked: false, createdAt: Date.now() };
  await db.send(new PutCommand({ TableName: process.env.TODOS, Item: item }));
  return json(201, item);
};

module.exports.check = async (event) => {
  try {
    const { Attributes } = await db.send(new UpdateCommand({
      TableName: process.env.TODOS,
      Key: { id: event.pathParameters.id },
      UpdateExpression: 'SET checked = :t, checkedAt = :now',
      ConditionExpression: 'attribute_exists(id)',
      ExpressionAttributeValues: { ':t': true, ':now': Date.now() },
      ReturnValues: 'ALL_NEW',
    }));
    return json(200, Attributes);
  } catch (e) {
    if (e.name === 'ConditionalCheckFailedException') return json(404, { message: 'no such todo' });
    throw e;
  }
};

module.exports.stats = async () => {
  const { Item } = await db.send(new GetCommand({ TableName: process.env.STATS, Key: { name: 'open' } }));
  return json(200, { open: Item ? Item.count : 0 });
};

// Each record moves the count of open items; an item checked off is announced on the queue.
module.exports.count = async (event) => {
  let delta = 0;
  for (const record of event.Records) {
    const wasOpen = record.dynamodb.OldImage ? !record.dynamodb.OldImage.checked.BOOL : false;
    const isOpen = record.dynamodb.NewImage ? !record.dynamodb.NewImage.checked.BOOL : false;
    delta += Number(isOpen) - Number(wasOpen);
    if (wasOpen && record.eventName === 'MODIFY' && !isOpen) {
      await sqs.send(new SendMessageCommand({
        QueueUrl: process.env.DONE_QUEUE,
        MessageBody: JSON.stringify({ id: record.dynamodb.Keys.id.S, text: record.dynamodb.NewImage.text.S }),
      }));
    }
  }
  if (delta !== 0) {
    await db.send(new UpdateCommand({
      TableName: process.env.STATS,
      Key: { name: 'open' },
      UpdateExpression: 'ADD #c :d',
      ExpressionAttributeNames: { '#c': 'count' },
      ExpressionAttributeValues: { ':d': delta },
    }));
  }
  console.log(`open items ${delta >= 0 ? '+' : ''}${delta} (${event.Records.length} changes)`);
};

module.exports.announce = async (event) => {
  const batchItemFailures = [];
  for (const message of event.Records) {
    try {
      const todo = JSON.parse(message.body);
      console.log(`done: ${todo.text}`);
    } catch (e) {
      batchItemFailures.push({ itemIdentifier: message.messageId });
    }
  }
  return { batchItemFailures };
};

module.exports.cleanup = async () => {
  const { Items } = await db.send(new ScanCommand({
    TableName: process.env.TODOS,
    FilterExpression: 'checked = :t',
    ExpressionAttributeValues: { ':t': true },
  }));
  for (const item of Items) {
    await db.send(new DeleteCommand({ TableName: process.env.TODOS, Key: { id: item.id } }));
  }
  console.log(`cleanup: removed ${Items.length} checked items`);
  return { removed: Items.length };
};
