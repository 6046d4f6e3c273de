'use strict';

// Does nothing with its batch: the benchmark measures the path, not the handler.
module.exports.consume = async (event) => ({ batchItemFailures: [], n: event.Records.length });

// Prints, per record, the milliseconds from the writer's clock reading (in the item) to now.
module.exports.changes = async (event) => {
  const now = Date.now();
  for (const r of event.Records) {
    const sent = Number(r.dynamodb.NewImage.sent.N);
    console.log(`LAG ${now - sent}`);
  }
};
