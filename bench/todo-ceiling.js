// The ceiling for the Todo benchmark: the Todo service's own `get` and `create` handlers and
// their aws-sdk v2 DynamoDB calls, driven back to back in one plain Node.js process against
// Sylph's table API: no gateway, no instance, no sandbox. What one core of Node.js can do with
// this handler and SDK is the most a function instance can do; the benchmark compares Sylph's
// end-to-end throughput with this figure times the cores functions may use.
//
// Usage: node bench/todo-ceiling.js ENDPOINT TABLE SECONDS ID[,ID...]
// (NODE_PATH must reach aws-sdk, as Sylph gives functions.) Prints one JSON line.
'use strict';

const path = require('path');

const [endpoint, table, seconds, ids] = process.argv.slice(2);
process.env.DYNAMODB_TABLE = table;
process.env.AWS_ENDPOINT_URL_DYNAMODB = endpoint;
process.env.AWS_NODEJS_CONNECTION_REUSE_ENABLED = '1';
process.env.AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE = '1';
const AWS = require('aws-sdk');
AWS.config.update({
  region: 'us-east-1',
  accessKeyId: 'ceiling',
  secretAccessKey: 'ceiling',
  dynamodb: { endpoint },
});

const todos = path.join(__dirname, '..', 'examples', 'todo', 'todos');
const { get } = require(path.join(todos, 'get.js'));
const { create } = require(path.join(todos, 'create.js'));
const idList = ids.split(',');
const context = { awsRequestId: 'ceiling', getRemainingTimeInMillis: () => 6000 };

function call(handler, event) {
  return new Promise((resolve, reject) => {
    handler(event, context, (error, result) => {
      if (error) reject(error);
      else if (result.statusCode !== 200) reject(new Error(`status ${result.statusCode}: ${result.body}`));
      else resolve(result);
    });
  });
}

async function loop(makeEvent, handler) {
  const until = Date.now() + Number(seconds) * 1000;
  // Warm up (JIT, the keep-alive connection) before counting.
  for (let i = 0; i < 200; i++) await call(handler, makeEvent(i));
  const started = process.hrtime.bigint();
  let n = 0;
  while (Date.now() < until) {
    await call(handler, makeEvent(n));
    n++;
  }
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  return n / elapsed;
}

(async () => {
  const getRps = await loop((i) => ({ pathParameters: { id: idList[i % idList.length] } }), get);
  const postRps = await loop((i) => ({ body: JSON.stringify({ text: `ceiling ${i}` }) }), create);
  process.stdout.write(JSON.stringify({ get: getRps, post: postRps }) + '\n');
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
