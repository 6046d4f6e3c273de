// What one call of the Todo service's `get` handler (aws-sdk v2 DocumentClient.get) costs the
// Node.js process in CPU, outside any instance: after a given number of warm-up calls, and with
// a pause between calls (as an instance between requests). This is the floor under a Node.js
// instance's CPU per request in the Todo benchmark.
//
// Usage: NODE_PATH=~/.local/share/sylph/runtime/node/node_modules \
//          node bench/sdk-call-cpu.js ENDPOINT TODO_ID [WARMUP_CALLS] [CALLS] [PAUSE_MS]
// against a running `sylph dev` of examples/todo (ENDPOINT like http://127.0.0.1:3000).
'use strict';

const path = require('path');

const [endpoint, id, warmup = '50', calls = '300', pause = '0'] = process.argv.slice(2);
process.env.DYNAMODB_TABLE = 'todo-dev';
process.env.AWS_NODEJS_CONNECTION_REUSE_ENABLED = '1';
process.env.AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE = '1';
const AWS = require('aws-sdk');
AWS.config.update({ region: 'us-east-1', accessKeyId: 'cpu', secretAccessKey: 'cpu', dynamodb: { endpoint } });
const { get } = require(path.join(__dirname, '..', 'examples', 'todo', 'todos', 'get.js'));

const call = () => new Promise((resolve, reject) => {
  get({ pathParameters: { id } }, {}, (error, result) => (error ? reject(error) : resolve(result)));
});
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

(async () => {
  for (let i = 0; i < Number(warmup); i++) await call();
  const before = process.cpuUsage();
  for (let i = 0; i < Number(calls); i++) {
    await call();
    if (Number(pause)) await sleep(Number(pause));
  }
  const used = process.cpuUsage(before);
  const perCall = (used.user + used.system) / Number(calls);
  console.log(`after ${warmup} warm-up calls, ${pause} ms between calls: ${perCall.toFixed(0)} us CPU per call`);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
