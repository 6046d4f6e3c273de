'use strict';

// A plain async handler behind an `http` (REST, payload 1.0) event.
exports.hello = async (event) => ({
  statusCode: 200,
  headers: { 'Content-Type': 'application/json' },
  body: JSON.stringify({
    message: `${process.env.GREETING} from ${process.env.AWS_LAMBDA_FUNCTION_NAME}`,
    stage: process.env.STAGE,
    name: (event.queryStringParameters || {}).name || null,
  }),
});

// Echoes back what API Gateway handed over, for either payload version.
exports.echo = async (event) => {
  console.log('echo', event.httpMethod || event.requestContext.http.method, event.path || event.rawPath);
  return {
    statusCode: 200,
    multiValueHeaders: { 'Set-Cookie': ['a=1', 'b=2'] },
    body: JSON.stringify(event),
  };
};

// A payload 2.0 handler that returns a bare object: API Gateway infers a 200 JSON response.
exports.v2 = async () => ({ hello: 'world' });

exports.fail = async () => {
  throw new Error('this function always fails');
};

// Exits the process mid-invocation: only this request is lost.
exports.crash = async () => {
  console.log('about to crash');
  process.exit(3);
};

exports.slow = async () => {
  await new Promise((resolve) => setTimeout(resolve, 5000));
  return { statusCode: 200, body: 'too late' };
};

// Answers with binary content, base64-encoded as API Gateway expects.
exports.binary = async (event) => ({
  statusCode: 200,
  headers: { 'Content-Type': 'application/octet-stream' },
  isBase64Encoded: true,
  body: Buffer.from(Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8').reverse()).toString('base64'),
});

// Reports the context object and the Lambda environment.
exports.context = async (event, context) => ({
  event,
  functionName: context.functionName,
  memoryLimitInMB: context.memoryLimitInMB,
  awsRequestId: context.awsRequestId,
  invokedFunctionArn: context.invokedFunctionArn,
  remaining: context.getRemainingTimeInMillis(),
  callbackWaitsForEmptyEventLoop: context.callbackWaitsForEmptyEventLoop,
  clientContext: context.clientContext || null,
  env: {
    AWS_REGION: process.env.AWS_REGION,
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    AWS_EXECUTION_ENV: process.env.AWS_EXECUTION_ENV,
    LAMBDA_TASK_ROOT: process.env.LAMBDA_TASK_ROOT,
    AWS_LAMBDA_LOG_GROUP_NAME: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    TZ: process.env.TZ,
    EXTRA: process.env.EXTRA || null,
  },
});
