'use strict';

exports.hello = async () => ({
  statusCode: 200,
  headers: { 'Content-Type': 'application/json' },
  body: '{"message":"hello"}',
});
