'use strict';

const dynamodb = require('./dynamodb');
const respond = require('./respond');

module.exports.delete = (event, context, callback) => {
  const params = { TableName: process.env.DYNAMODB_TABLE, Key: { id: event.pathParameters.id } };
  dynamodb.delete(params, (error) => {
    if (error) {
      console.error(error);
      callback(null, respond.error(error.statusCode || 501, "Couldn't remove the todo item."));
      return;
    }
    callback(null, respond.json(200, {}));
  });
};
