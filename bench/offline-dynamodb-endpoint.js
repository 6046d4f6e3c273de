// Preloaded (NODE_OPTIONS=--require) into serverless-offline for the Todo benchmark: points
// aws-sdk v2 at dynalite, which is what serverless-dynamodb-local setups do. The handlers run
// unchanged, as they do under sylph dev (which does the same for its own table API).
'use strict';
// Resolve aws-sdk as the service's handlers do, so both configure the same module instance.
const AWS = require(require.resolve('aws-sdk', { paths: [process.cwd()] }));
AWS.config.dynamodb = { endpoint: process.env.BENCH_DYNAMODB_ENDPOINT };
AWS.config.update({ region: 'us-east-1', accessKeyId: 'local', secretAccessKey: 'local' });
