// Drives sylph's SQS API with the real AWS SDK for JavaScript v3 (@aws-sdk/client-sqs, JSON
// protocol). Every check throws on failure; prints a JSON summary for the Rust test.
import {
  SQSClient, CreateQueueCommand, GetQueueUrlCommand, ListQueuesCommand, GetQueueAttributesCommand,
  SetQueueAttributesCommand, SendMessageCommand, SendMessageBatchCommand, ReceiveMessageCommand,
  DeleteMessageCommand, DeleteMessageBatchCommand, ChangeMessageVisibilityCommand,
  ChangeMessageVisibilityBatchCommand, PurgeQueueCommand, DeleteQueueCommand,
  TagQueueCommand, UntagQueueCommand, ListQueueTagsCommand,
} from '@aws-sdk/client-sqs';
import assert from 'node:assert/strict';

const [endpoint, prefix] = process.argv.slice(2);
const sqs = new SQSClient({
  endpoint, region: 'us-east-1', maxAttempts: 1,
  credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
});
const out = {};

// A dead-letter queue, and a queue that redrives to it after two receives.
const { QueueUrl: dlq } = await sqs.send(new CreateQueueCommand({ QueueName: `${prefix}-dlq` }));
const { QueueUrl: jobs } = await sqs.send(new CreateQueueCommand({
  QueueName: `${prefix}-jobs`,
  Attributes: {
    VisibilityTimeout: '1',
    RedrivePolicy: JSON.stringify({ deadLetterTargetArn: `arn:aws:sqs:us-east-1:000000000000:${prefix}-dlq`, maxReceiveCount: 2 }),
  },
}));
assert.equal((await sqs.send(new GetQueueUrlCommand({ QueueName: `${prefix}-jobs` }))).QueueUrl, jobs);
const listed = await sqs.send(new ListQueuesCommand({ QueueNamePrefix: prefix }));
out.listed = listed.QueueUrls.length;

// Send with attributes: the SDK checks both MD5s.
const sent = await sqs.send(new SendMessageCommand({
  QueueUrl: jobs, MessageBody: 'hello',
  MessageAttributes: {
    kind: { DataType: 'String', StringValue: 'greeting' },
    weight: { DataType: 'Number', StringValue: '7' },
    blob: { DataType: 'Binary', BinaryValue: Buffer.from([1, 2, 3]) },
  },
}));
assert.ok(sent.MessageId && sent.MD5OfMessageAttributes);
const batch = await sqs.send(new SendMessageBatchCommand({
  QueueUrl: jobs,
  Entries: [{ Id: 'a', MessageBody: 'one' }, { Id: 'b', MessageBody: 'two', DelaySeconds: 0 }, { Id: 'c', MessageBody: '' }],
}));
out.batch = { ok: batch.Successful.length, failed: batch.Failed.map((f) => f.Id) };

// Receive everything, with attributes; the SDK checks MD5OfBody and MD5OfMessageAttributes.
const got = await sqs.send(new ReceiveMessageCommand({
  QueueUrl: jobs, MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
  MessageSystemAttributeNames: ['All'], MessageAttributeNames: ['All'],
}));
out.received = got.Messages.map((m) => m.Body).sort();
const hello = got.Messages.find((m) => m.Body === 'hello');
out.attributes = {
  kind: hello.MessageAttributes.kind.StringValue,
  blob: [...hello.MessageAttributes.blob.BinaryValue],
  receiveCount: hello.Attributes.ApproximateReceiveCount,
};
// In flight: nothing more to receive right now.
const none = await sqs.send(new ReceiveMessageCommand({ QueueUrl: jobs, WaitTimeSeconds: 0 }));
out.whileInFlight = (none.Messages ?? []).length;
const attrs = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: jobs, AttributeNames: ['All'] }))).Attributes;
out.notVisible = attrs.ApproximateNumberOfMessagesNotVisible;
// Keep 'one' hidden longer, delete 'two' and 'hello' (one batch), leave 'one' to come back.
const one = got.Messages.find((m) => m.Body === 'one');
const two = got.Messages.find((m) => m.Body === 'two');
await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: jobs, ReceiptHandle: one.ReceiptHandle, VisibilityTimeout: 0 }));
const changed = await sqs.send(new ChangeMessageVisibilityBatchCommand({
  QueueUrl: jobs, Entries: [{ Id: 'x', ReceiptHandle: 'not-a-handle', VisibilityTimeout: 5 }],
}));
out.badHandle = changed.Failed[0]?.Code;
const deleted = await sqs.send(new DeleteMessageBatchCommand({
  QueueUrl: jobs, Entries: [{ Id: 'h', ReceiptHandle: hello.ReceiptHandle }, { Id: 't', ReceiptHandle: two.ReceiptHandle }],
}));
out.deleted = deleted.Successful.length;

// 'one' comes back (second receive), then is not deleted: after maxReceiveCount it moves to the DLQ.
const again = await sqs.send(new ReceiveMessageCommand({ QueueUrl: jobs, WaitTimeSeconds: 2, MessageSystemAttributeNames: ['ApproximateReceiveCount'] }));
out.again = again.Messages.map((m) => [m.Body, m.Attributes.ApproximateReceiveCount]);
await new Promise((r) => setTimeout(r, 1200));
const empty = await sqs.send(new ReceiveMessageCommand({ QueueUrl: jobs, WaitTimeSeconds: 1 }));
out.afterRedrive = (empty.Messages ?? []).length;
const dead = await sqs.send(new ReceiveMessageCommand({ QueueUrl: dlq, WaitTimeSeconds: 2 }));
out.deadLettered = dead.Messages.map((m) => m.Body);
await sqs.send(new DeleteMessageCommand({ QueueUrl: dlq, ReceiptHandle: dead.Messages[0].ReceiptHandle }));

// Long polling: a receive waiting 5 s gets a message sent while it waits.
const waiting = sqs.send(new ReceiveMessageCommand({ QueueUrl: jobs, WaitTimeSeconds: 5 }));
await new Promise((r) => setTimeout(r, 300));
await sqs.send(new SendMessageCommand({ QueueUrl: jobs, MessageBody: 'late' }));
out.longPoll = (await waiting).Messages.map((m) => m.Body);

// FIFO: order within each group, deduplication by content.
const { QueueUrl: fifo } = await sqs.send(new CreateQueueCommand({
  QueueName: `${prefix}-orders.fifo`, Attributes: { FifoQueue: 'true', ContentBasedDeduplication: 'true' },
}));
for (const [group, body] of [['g1', 'g1-a'], ['g2', 'g2-a'], ['g1', 'g1-b'], ['g1', 'g1-b'], ['g2', 'g2-b'], ['g1', 'g1-c']]) {
  await sqs.send(new SendMessageCommand({ QueueUrl: fifo, MessageBody: body, MessageGroupId: group }));
}
const order = [];
for (let i = 0; i < 10 && order.length < 5; i++) {
  const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl: fifo, MaxNumberOfMessages: 2, WaitTimeSeconds: 1 }));
  for (const m of r.Messages ?? []) {
    order.push(m.Body);
    await sqs.send(new DeleteMessageCommand({ QueueUrl: fifo, ReceiptHandle: m.ReceiptHandle }));
  }
}
out.fifo = order;
try {
  await sqs.send(new SendMessageCommand({ QueueUrl: fifo, MessageBody: 'no group' }));
  out.fifoWithoutGroup = 'accepted';
} catch (e) {
  out.fifoWithoutGroup = e.name;
}

// Errors come back as the SDK's typed exceptions.
try {
  await sqs.send(new GetQueueUrlCommand({ QueueName: `${prefix}-missing` }));
} catch (e) {
  out.missing = e.name;
}
await sqs.send(new SetQueueAttributesCommand({ QueueUrl: jobs, Attributes: { DelaySeconds: '5' } }));
out.delay = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: jobs, AttributeNames: ['DelaySeconds'] }))).Attributes.DelaySeconds;
await sqs.send(new TagQueueCommand({ QueueUrl: jobs, Tags: { team: 'core', env: 'dev' } }));
await sqs.send(new UntagQueueCommand({ QueueUrl: jobs, TagKeys: ['env'] }));
out.tags = (await sqs.send(new ListQueueTagsCommand({ QueueUrl: jobs }))).Tags;
await sqs.send(new PurgeQueueCommand({ QueueUrl: jobs }));
for (const url of [jobs, dlq, fifo]) {
  await sqs.send(new DeleteQueueCommand({ QueueUrl: url }));
}
out.left = ((await sqs.send(new ListQueuesCommand({ QueueNamePrefix: prefix }))).QueueUrls ?? []).length;
console.log(JSON.stringify(out));
