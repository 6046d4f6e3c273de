'use strict';

const dynamodb = require('./dynamodb');
const respond = require('./respond');

module.exports.update = (event, context, callback) => {
  let data;
  try {
    data = JSON.parse(event.body || '{}');
  } catch (e) {
    callback(null, respond.error(400, 'The body must be JSON.'));
    return;
  }
  if (typeof data.text !== 'string' || typeof data.checked !== 'boolean') {
    console.error('Validation failed: text must be a string and checked a boolean');
    callback(null, respond.error(400, "Couldn't update the todo item: send `text` (string) and `checked` (boolean)."));
    return;
  }
  const params = {
    TableName: process.env.DYNAMODB_TABLE,
    Key: { id: event.pathParameters.id },
    // `text` is a DynamoDB reserved word, hence the name placeholder.
    ExpressionAttributeNames: { '#todo_text': 'text' },
    ExpressionAttributeValues: { ':text': data.text, ':checked': data.checked, ':updatedAt': Date.now(), ':zero': 0, ':one': 1 },
    UpdateExpression:
      'SET #todo_text = :text, checked = :checked, updatedAt = :updatedAt, edits = if_not_exists(edits, :zero) + :one',
    ConditionExpression: 'attribute_exists(id)',
    ReturnValues: 'ALL_NEW',
  };
  dynamodb.update(params, (error, result) => {
    if (error) {
      if (error.code === 'ConditionalCheckFailedException') {
        callback(null, respond.error(404, 'Todo item not found.'));
        return;
      }
      console.error(error);
      callback(null, respond.error(error.statusCode || 501, "Couldn't update the todo item."));
      return;
    }
    callback(null, respond.json(200, result.Attributes));
  });
};
