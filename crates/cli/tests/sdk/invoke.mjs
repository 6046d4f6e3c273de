// Drives sylph dev's Lambda Invoke API with the real @aws-sdk/client-lambda (v3) and prints a
// JSON summary for the Rust end-to-end test to check.
import { LambdaClient, InvokeCommand } from '@aws-sdk/client-lambda';

const endpoint = process.argv[2];
const client = new LambdaClient({
  endpoint,
  region: 'us-east-1',
  credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  maxAttempts: 1,
});
const text = (bytes) => (bytes ? Buffer.from(bytes).toString('utf8') : '');
const out = {};

const ok = await client.send(new InvokeCommand({
  FunctionName: 'context',
  Payload: JSON.stringify({ from: 'sdk-v3' }),
  LogType: 'Tail',
  ClientContext: Buffer.from(JSON.stringify({ custom: { who: 'v3' } })).toString('base64'),
}));
out.ok = {
  status: ok.StatusCode,
  functionError: ok.FunctionError ?? null,
  executedVersion: ok.ExecutedVersion,
  payload: JSON.parse(text(ok.Payload)),
  log: Buffer.from(ok.LogResult ?? '', 'base64').toString('utf8'),
};

const failed = await client.send(new InvokeCommand({ FunctionName: 'hello-node-dev-fail', Payload: '{}' }));
out.failed = { status: failed.StatusCode, functionError: failed.FunctionError ?? null, payload: JSON.parse(text(failed.Payload)) };

const event = await client.send(new InvokeCommand({ FunctionName: 'context', InvocationType: 'Event', Payload: '{}' }));
out.event = { status: event.StatusCode };

const dry = await client.send(new InvokeCommand({ FunctionName: 'context', InvocationType: 'DryRun' }));
out.dryRun = { status: dry.StatusCode };

try {
  await client.send(new InvokeCommand({ FunctionName: 'no-such-function', Payload: '{}' }));
  out.missing = { error: null };
} catch (e) {
  out.missing = { error: e.name, status: e.$metadata?.httpStatusCode, message: e.message };
}

console.log(JSON.stringify(out));
