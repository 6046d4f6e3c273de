'use strict';

const dynamodb = require('./dynamodb');
const respond = require('./respond');

module.exports.get = (event, context, callback) => {
  const params = { TableName: process.env.DYNAMODB_TABLE, Key: { id: event.pathParameters.id } };
  dynamodb.get(params, (error, result) => {
    if (error) {
      console.error(error);
      callback(null, respond.error(error.statusCode || 501, "Couldn't fetch the todo item."));
      return;
    }
    if (!result.Item) {
      callback(null, respond.error(404, 'Todo item not found.'));
      return;
    }
    callback(null, respond.json(200, result.Item));
  });
};
