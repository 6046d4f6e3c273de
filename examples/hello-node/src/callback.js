'use strict';

// An old-style callback handler in a nested path (`src/callback.handler`).
module.exports.handler = (event, context, callback) => {
  setTimeout(() => {
    callback(null, {
      statusCode: 200,
      body: JSON.stringify({ style: 'callback', requestId: context.awsRequestId }),
    });
  }, 10);
};
