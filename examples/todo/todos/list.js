'use strict';

const dynamodb = require('./dynamodb');
const respond = require('./respond');

module.exports.list = (event, context, callback) => {
  dynamodb.scan({ TableName: process.env.DYNAMODB_TABLE }, (error, result) => {
    if (error) {
      console.error(error);
      callback(null, respond.error(error.statusCode || 501, "Couldn't fetch the todos."));
      return;
    }
    const items = result.Items.sort((a, b) => a.createdAt - b.createdAt);
    callback(null, respond.json(200, items));
  });
};
