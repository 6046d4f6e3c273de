'use strict';

const crypto = require('crypto');
const dynamodb = require('./dynamodb');
const respond = require('./respond');

module.exports.create = (event, context, callback) => {
  let data;
  try {
    data = JSON.parse(event.body || '{}');
  } catch (e) {
    callback(null, respond.error(400, 'The body must be JSON.'));
    return;
  }
  if (typeof data.text !== 'string' || data.text.trim() === '') {
    console.error('Validation failed: text is missing');
    callback(null, respond.error(400, "Couldn't create the todo item: `text` must be a non-empty string."));
    return;
  }
  const now = Date.now();
  const item = { id: crypto.randomUUID(), text: data.text, checked: false, createdAt: now, updatedAt: now };
  dynamodb.put({ TableName: process.env.DYNAMODB_TABLE, Item: item }, (error) => {
    if (error) {
      console.error(error);
      callback(null, respond.error(error.statusCode || 501, "Couldn't create the todo item."));
      return;
    }
    callback(null, respond.json(200, item));
  });
};
