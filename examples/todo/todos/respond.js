'use strict';

// Lambda proxy responses; the page is served from the same origin, but API clients on other
// origins get CORS headers too (API Gateway leaves them to the function).
const headers = { 'Content-Type': 'application/json', 'Access-Control-Allow-Origin': '*' };

module.exports.json = (statusCode, body) => ({ statusCode, headers, body: JSON.stringify(body) });

module.exports.error = (statusCode, message) => ({
  statusCode,
  headers: { ...headers, 'Content-Type': 'text/plain' },
  body: message,
});
