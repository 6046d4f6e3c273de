// The @aws-sdk v3 clients (client-dynamodb + lib-dynamodb) against `sylph tables`: GSIs,
// pagination, transactions, TTL. Prints a JSON summary for the Rust end-to-end test.
import {
  DynamoDBClient, CreateTableCommand, DescribeTableCommand, UpdateTimeToLiveCommand, DescribeTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient, PutCommand, QueryCommand, TransactWriteCommand, GetCommand, paginateQuery, UpdateCommand,
} from '@aws-sdk/lib-dynamodb';

const endpoint = process.argv[2];
const client = new DynamoDBClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'l', secretAccessKey: 'l' }, maxAttempts: 1 });
const doc = DynamoDBDocumentClient.from(client);
const out = {};

await client.send(new CreateTableCommand({
  TableName: 'orders',
  KeySchema: [{ AttributeName: 'customer', KeyType: 'HASH' }, { AttributeName: 'orderId', KeyType: 'RANGE' }],
  AttributeDefinitions: [
    { AttributeName: 'customer', AttributeType: 'S' },
    { AttributeName: 'orderId', AttributeType: 'N' },
    { AttributeName: 'status', AttributeType: 'S' },
  ],
  GlobalSecondaryIndexes: [{
    IndexName: 'byStatus',
    KeySchema: [{ AttributeName: 'status', KeyType: 'HASH' }, { AttributeName: 'orderId', KeyType: 'RANGE' }],
    Projection: { ProjectionType: 'KEYS_ONLY' },
  }],
  BillingMode: 'PAY_PER_REQUEST',
}));
const described = await client.send(new DescribeTableCommand({ TableName: 'orders' }));
out.status = described.Table.TableStatus;
out.gsi = described.Table.GlobalSecondaryIndexes.map((g) => g.IndexName);

for (let i = 1; i <= 25; i++) {
  await doc.send(new PutCommand({ TableName: 'orders', Item: { customer: 'c1', orderId: i, status: i % 2 ? 'open' : 'done', amount: i * 1.5 } }));
}
await doc.send(new PutCommand({ TableName: 'orders', Item: { customer: 'c2', orderId: 100, status: 'open' } }));

const pages = [];
for await (const page of paginateQuery({ client: doc, pageSize: 10 }, {
  TableName: 'orders', KeyConditionExpression: 'customer = :c AND orderId > :min', ExpressionAttributeValues: { ':c': 'c1', ':min': 3 },
})) {
  pages.push(page.Items.map((i) => i.orderId));
}
out.pages = pages;

const reversed = await doc.send(new QueryCommand({
  TableName: 'orders', KeyConditionExpression: 'customer = :c', ExpressionAttributeValues: { ':c': 'c1', ':t': 30 },
  FilterExpression: 'amount > :t', ScanIndexForward: false, ProjectionExpression: 'orderId, #s', ExpressionAttributeNames: { '#s': 'status' },
}));
out.filtered = { items: reversed.Items, count: reversed.Count, scanned: reversed.ScannedCount };

const byStatus = await doc.send(new QueryCommand({
  TableName: 'orders', IndexName: 'byStatus', KeyConditionExpression: '#s = :s AND orderId BETWEEN :a AND :b',
  ExpressionAttributeNames: { '#s': 'status' }, ExpressionAttributeValues: { ':s': 'open', ':a': 1, ':b': 9 },
}));
out.gsiItems = byStatus.Items;

const count = await doc.send(new QueryCommand({
  TableName: 'orders', KeyConditionExpression: 'customer = :c', ExpressionAttributeValues: { ':c': 'c1' }, Select: 'COUNT',
}));
out.count = count.Count;

await doc.send(new TransactWriteCommand({ TransactItems: [
  { Update: { TableName: 'orders', Key: { customer: 'c1', orderId: 1 }, UpdateExpression: 'SET #s = :d', ExpressionAttributeNames: { '#s': 'status' }, ExpressionAttributeValues: { ':d': 'done' } } },
  { Put: { TableName: 'orders', Item: { customer: 'c3', orderId: 1, status: 'open' } } },
] }));
try {
  await doc.send(new TransactWriteCommand({ TransactItems: [
    { Put: { TableName: 'orders', Item: { customer: 'c4', orderId: 1, status: 'open' } } },
    { ConditionCheck: { TableName: 'orders', Key: { customer: 'c1', orderId: 2 }, ConditionExpression: '#s = :o', ExpressionAttributeNames: { '#s': 'status' }, ExpressionAttributeValues: { ':o': 'open' } } },
  ] }));
  out.cancelled = null;
} catch (e) {
  out.cancelled = { name: e.name, reasons: e.CancellationReasons.map((r) => r.Code) };
}
out.c4 = (await doc.send(new GetCommand({ TableName: 'orders', Key: { customer: 'c4', orderId: 1 } }))).Item ?? null;
out.c1first = (await doc.send(new GetCommand({ TableName: 'orders', Key: { customer: 'c1', orderId: 1 } }))).Item.status;

try {
  await doc.send(new UpdateCommand({ TableName: 'orders', Key: { customer: 'c1', orderId: 3 }, UpdateExpression: 'SET orderId = :x', ExpressionAttributeValues: { ':x': 9 } }));
} catch (e) {
  out.keyUpdate = e.name;
}

// TTL: an item that expired a while ago disappears.
await client.send(new UpdateTimeToLiveCommand({ TableName: 'orders', TimeToLiveSpecification: { Enabled: true, AttributeName: 'expiresAt' } }));
out.ttl = (await client.send(new DescribeTimeToLiveCommand({ TableName: 'orders' }))).TimeToLiveDescription;
await doc.send(new PutCommand({ TableName: 'orders', Item: { customer: 'ttl', orderId: 1, expiresAt: Math.floor(Date.now() / 1000) - 60 } }));
await doc.send(new PutCommand({ TableName: 'orders', Item: { customer: 'ttl', orderId: 2, expiresAt: Math.floor(Date.now() / 1000) + 3600 } }));
let expired = false;
for (let i = 0; i < 100 && !expired; i++) {
  await new Promise((r) => setTimeout(r, 100));
  expired = !(await doc.send(new GetCommand({ TableName: 'orders', Key: { customer: 'ttl', orderId: 1 } }))).Item;
}
out.expired = expired;
out.notExpired = !!(await doc.send(new GetCommand({ TableName: 'orders', Key: { customer: 'ttl', orderId: 2 } }))).Item;
console.log(JSON.stringify(out));
