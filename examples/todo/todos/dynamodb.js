'use strict';

// One DocumentClient per instance, reused across invocations.
const AWS = require('aws-sdk');

module.exports = new AWS.DynamoDB.DocumentClient();
