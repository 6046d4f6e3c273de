// Drives a sylph server with the real AWS SDK for JavaScript v3 and a key made by `sylph keys`:
// invokes a deployed function (@aws-sdk/client-lambda) and reads its table
// (@aws-sdk/lib-dynamodb). Prints a JSON summary for the Rust end-to-end test.
import { LambdaClient, InvokeCommand } from '@aws-sdk/client-lambda';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';

const [endpoint, accessKeyId, secretAccessKey, functionName, table] = process.argv.slice(2);
const config = { endpoint, region: 'us-east-1', credentials: { accessKeyId, secretAccessKey }, maxAttempts: 1 };
const out = {};
const invoked = await new LambdaClient(config).send(new InvokeCommand({ FunctionName: functionName, Payload: '{}' }));
out.invoke = {
  status: invoked.StatusCode,
  functionError: invoked.FunctionError ?? null,
  payload: JSON.parse(Buffer.from(invoked.Payload).toString('utf8')),
};
const docs = DynamoDBDocumentClient.from(new DynamoDBClient(config));
const scanned = await docs.send(new ScanCommand({ TableName: table }));
out.items = scanned.Items;
console.log(JSON.stringify(out));
