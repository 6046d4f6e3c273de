// Drives sylph's SQS API with the AWS SDK for JavaScript v2 (aws-sdk): the calls older
// services make. Prints a JSON summary for the Rust test; throws on any failure.
const AWS = require('aws-sdk');
const assert = require('node:assert/strict');

const [endpoint, prefix] = process.argv.slice(2);
const sqs = new AWS.SQS({
  endpoint, region: 'us-east-1', maxRetries: 0,
  credentials: new AWS.Credentials('local', 'local'),
});

(async () => {
  const out = {};
  const { QueueUrl } = await sqs.createQueue({ QueueName: `${prefix}-v2`, Attributes: { VisibilityTimeout: '5' } }).promise();
  const sent = await sqs.sendMessage({
    QueueUrl, MessageBody: JSON.stringify({ n: 1 }),
    MessageAttributes: { source: { DataType: 'String', StringValue: 'v2' } },
  }).promise();
  assert.ok(sent.MessageId);
  await sqs.sendMessageBatch({ QueueUrl, Entries: [{ Id: 'a', MessageBody: 'a' }, { Id: 'b', MessageBody: 'b' }] }).promise();
  const got = await sqs.receiveMessage({ QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: ['All'], AttributeNames: ['All'] }).promise();
  out.received = got.Messages.map((m) => m.Body).sort();
  out.source = got.Messages.find((m) => m.Body.startsWith('{')).MessageAttributes.source.StringValue;
  const del = await sqs.deleteMessageBatch({
    QueueUrl, Entries: got.Messages.map((m, i) => ({ Id: `d${i}`, ReceiptHandle: m.ReceiptHandle })),
  }).promise();
  out.deleted = del.Successful.length;
  const attrs = await sqs.getQueueAttributes({ QueueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'QueueArn'] }).promise();
  out.arn = attrs.Attributes.QueueArn;
  out.depth = attrs.Attributes.ApproximateNumberOfMessages;
  try {
    await sqs.receiveMessage({ QueueUrl, MaxNumberOfMessages: 11 }).promise();
  } catch (e) {
    out.tooMany = e.code;
  }
  await sqs.deleteQueue({ QueueUrl }).promise();
  console.log(JSON.stringify(out));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
