// Sylph's Node.js runtime client: loads the function's handler the way the official
// aws-lambda-nodejs-runtime-interface-client does and serves it over the Lambda Runtime API.
'use strict';

const http = require('http');
const path = require('path');
const { pathToFileURL } = require('url');

const api = process.env.AWS_LAMBDA_RUNTIME_API;
const [apiHost, apiPort] = api.split(':');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const base = '/2018-06-01/runtime';

function call(method, urlPath, body, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: apiHost, port: apiPort, method, path: base + urlPath, agent, headers: headers || {} },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

// How invocations arrive and answers leave: Sylph's socketpair (fd 3, length-prefixed frames,
// see crates/runtime/src/pipe.rs) when it provides one, otherwise the HTTP Runtime API.
function pipeTransport(fd) {
  const net = require('net');
  const socket = new net.Socket({ fd, readable: true, writable: true });
  let buffered = Buffer.alloc(0);
  let waiting = null;
  let onSpecialize = null;
  socket.on('data', (chunk) => {
    buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
    while (buffered.length >= 4) {
      const n = buffered.readUInt32LE(0);
      if (buffered.length < 4 + n) break;
      const frame = buffered.subarray(4, 4 + n);
      buffered = buffered.subarray(4 + n);
      if (frame[0] === 0x53 /* S */ && onSpecialize) {
        const resolve = onSpecialize;
        onSpecialize = null;
        resolve(JSON.parse(frame.toString('utf8', 1)));
        continue;
      }
      if (frame[0] === 0x56 /* V */ && waiting) {
        const headerLength = frame.readUInt32LE(1);
        const header = JSON.parse(frame.toString('utf8', 5, 5 + headerLength));
        const resolve = waiting;
        waiting = null;
        resolve({
          headers: {
            'lambda-runtime-aws-request-id': header.requestId,
            'lambda-runtime-deadline-ms': String(header.deadlineMs),
            'lambda-runtime-invoked-function-arn': header.invokedFunctionArn,
            'lambda-runtime-trace-id': header.traceId,
            'lambda-runtime-client-context': header.clientContext || undefined,
            'lambda-runtime-cognito-identity': header.cognitoIdentity || undefined,
          },
          body: frame.subarray(5 + headerLength),
        });
      }
    }
  });
  // Sylph closed the channel: the instance is being stopped.
  socket.on('close', () => process.exit(0));
  socket.on('error', () => process.exit(0));
  const str = (s) => {
    const b = Buffer.from(s || '', 'utf8');
    const len = Buffer.alloc(2);
    len.writeUInt16LE(b.length, 0);
    return [len, b];
  };
  // Resolves once the frame is handed to the kernel, so `process.exit` after it loses nothing.
  const send = (kind, parts) => new Promise((resolve) => {
    const body = Buffer.concat(parts);
    const head = Buffer.alloc(5);
    head.writeUInt32LE(body.length + 1, 0);
    head[4] = kind.charCodeAt(0);
    socket.write(Buffer.concat([head, body]), () => resolve());
  });
  return {
    // Tell Sylph preloading is done, so a cold start may take this runtime.
    ready: () => send('W', []),
    specialization: () => new Promise((resolve) => {
      onSpecialize = resolve;
    }),
    next: () => new Promise((resolve) => {
      waiting = resolve;
      send('N', []);
    }),
    respond: (id, body) => send('R', [...str(id), Buffer.from(body, 'utf8')]),
    fail: (id, type, body) => send('E', [...str(id), ...str(type), Buffer.from(body, 'utf8')]),
    initError: (type, body) => send('I', [...str(type), Buffer.from(body, 'utf8')]),
  };
}

function httpTransport() {
  const json = { 'Content-Type': 'application/json' };
  return {
    next: () => call('GET', '/invocation/next'),
    respond: (id, body) => call('POST', `/invocation/${id}/response`, body, json),
    fail: (id, type, body) => call('POST', `/invocation/${id}/error`, body, { ...json, 'Lambda-Runtime-Function-Error-Type': type }),
    initError: (type, body) => call('POST', '/init/error', body, { ...json, 'Lambda-Runtime-Function-Error-Type': type }),
  };
}

const transport = process.env.SYLPH_RUNTIME_FD ? pipeTransport(Number(process.env.SYLPH_RUNTIME_FD)) : httpTransport();

function errorBody(err) {
  const e = err instanceof Error ? err : new Error(String(err));
  return {
    errorType: e.name || 'Error',
    errorMessage: e.message,
    trace: typeof e.stack === 'string' ? e.stack.split('\n') : [],
  };
}

function toJson(value) {
  return JSON.stringify(value === undefined ? null : value);
}

// Report an error for invocation `requestId`, or the init error when `requestId` is null.
async function postError(requestId, err, errorType) {
  const body = errorBody(err);
  if (errorType) body.errorType = errorType;
  console.error(JSON.stringify(Object.assign({ level: 'ERROR' }, body)));
  if (requestId === null) await transport.initError(body.errorType, JSON.stringify(body));
  else await transport.fail(requestId, body.errorType, JSON.stringify(body));
}

// `todos/create.create` -> module `todos/create`, export path `create`. Like the official
// client, the module name ends at the first dot of the last path segment.
function splitHandler(handler) {
  const slash = handler.lastIndexOf('/');
  const dir = handler.slice(0, slash + 1);
  const rest = handler.slice(slash + 1);
  const dot = rest.indexOf('.');
  if (dot < 0) return null;
  return [dir + rest.slice(0, dot), rest.slice(dot + 1)];
}

async function loadModule(root, moduleName) {
  const base = path.resolve(root, moduleName);
  const fs = require('fs');
  for (const ext of ['.js', '.mjs', '.cjs']) {
    const file = base + ext;
    if (!fs.existsSync(file)) continue;
    if (ext === '.mjs') return import(pathToFileURL(file).href);
    try {
      return require(file);
    } catch (e) {
      if (e && e.code === 'ERR_REQUIRE_ESM') return import(pathToFileURL(file).href);
      throw e;
    }
  }
  if (fs.existsSync(base) || fs.existsSync(base + '/index.js')) return require(base);
  const err = new Error(`Cannot find module '${moduleName}'`);
  err.name = 'Runtime.ImportModuleError';
  throw err;
}

async function loadHandler() {
  const handlerString = process.env._HANDLER || '';
  const root = process.env.LAMBDA_TASK_ROOT || process.cwd();
  const parts = splitHandler(handlerString);
  if (!parts) {
    const err = new Error(`Bad handler ${handlerString}: expected module.function`);
    err.name = 'Runtime.MalformedHandlerName';
    throw err;
  }
  let mod;
  try {
    mod = await loadModule(root, parts[0]);
  } catch (e) {
    if (e instanceof SyntaxError) e.name = 'Runtime.UserCodeSyntaxError';
    else if (e && e.name !== 'Runtime.ImportModuleError' && e.code === 'MODULE_NOT_FOUND') e.name = 'Runtime.ImportModuleError';
    throw e;
  }
  let fn = mod;
  for (const key of parts[1].split('.')) fn = fn == null ? undefined : fn[key];
  if (fn === undefined && mod && mod.default) {
    fn = mod.default;
    for (const key of parts[1].split('.')) fn = fn == null ? undefined : fn[key];
  }
  if (typeof fn !== 'function') {
    const err = new Error(`${handlerString} is undefined or not exported`);
    err.name = 'Runtime.HandlerNotFound';
    throw err;
  }
  return fn;
}

function makeContext(headers, done) {
  const deadline = Number(headers['lambda-runtime-deadline-ms']);
  const context = {
    callbackWaitsForEmptyEventLoop: true,
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'],
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    awsRequestId: headers['lambda-runtime-aws-request-id'],
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    getRemainingTimeInMillis: () => Math.max(deadline - Date.now(), 0),
    // Legacy callback-style helpers some older handlers still use.
    done: (err, result) => done(err, result),
    succeed: (result) => done(null, result),
    fail: (err) => done(err || new Error('handled'), undefined),
  };
  if (headers['lambda-runtime-client-context']) {
    try { context.clientContext = JSON.parse(headers['lambda-runtime-client-context']); } catch (_) {}
  }
  if (headers['lambda-runtime-cognito-identity']) {
    try { context.identity = JSON.parse(headers['lambda-runtime-cognito-identity']); } catch (_) {}
  }
  return context;
}

let currentRequestId = null;

function runHandler(handler, event, headers) {
  return new Promise((resolve) => {
    let finished = false;
    const done = (err, result) => {
      if (finished) return;
      finished = true;
      resolve({ err, result });
    };
    const context = makeContext(headers, done);
    let returned;
    try {
      returned = handler(event, context, done);
    } catch (e) {
      done(e);
      return;
    }
    if (returned && typeof returned.then === 'function') {
      returned.then((r) => done(null, r), (e) => done(e || new Error('Promise rejected with ' + e)));
    } else if (handler.length < 3 && returned !== undefined) {
      // A synchronous handler that returns a value without taking a callback.
      done(null, returned);
    }
  });
}

// aws-sdk v2 ignores AWS_ENDPOINT_URL*; the first time a function requires it (its own copy or
// the one Sylph ships on NODE_PATH), point its DynamoDB and Lambda clients at Sylph. Hooking
// require costs nothing for functions that never load aws-sdk.
function pointAwsSdkV2AtSylph() {
  const dynamodb = process.env.AWS_ENDPOINT_URL_DYNAMODB;
  const lambda = process.env.AWS_ENDPOINT_URL_LAMBDA;
  if (!dynamodb && !lambda) return;
  const Module = require('module');
  const original = Module.prototype.require;
  const configured = new WeakSet();
  Module.prototype.require = function (id) {
    const exported = original.apply(this, arguments);
    if (id === 'aws-sdk' || (typeof id === 'string' && id.startsWith('aws-sdk/'))) {
      let AWS;
      try {
        AWS = id === 'aws-sdk' ? exported : original.call(this, 'aws-sdk/global');
      } catch (_) {
        return exported;
      }
      if (AWS && AWS.config && !configured.has(AWS)) {
        configured.add(AWS);
        if (dynamodb) AWS.config.dynamodb = Object.assign({}, AWS.config.dynamodb, { endpoint: dynamodb });
        if (lambda) AWS.config.lambda = Object.assign({}, AWS.config.lambda, { endpoint: lambda });
      }
    }
    return exported;
  };
}

// A pre-started runtime: load what every function loads anyway, then wait to be told which
// function to become (its environment and folder), as Sylph's cold-start pool asks.
async function becomeFunction() {
  try {
    require('aws-sdk');
  } catch (_) {
    // Not installed: nothing to preload.
  }
  await transport.ready();
  const spec = await transport.specialization();
  Object.assign(process.env, spec.env);
  process.chdir(spec.cwd);
  // NODE_PATH may have changed: let module resolution see it.
  require('module')._initPaths();
}

// Lambda's Node.js runtime writes every console call as one line on stdout:
// `<ISO time>\t<request id>\t<LEVEL>\t<message>` (util.format; newlines inside become \r), with
// the last invocation's request id (`undefined` before the first), and drops the levels below
// AWS_LAMBDA_LOG_LEVEL (console.fatal never). Installed once the function's environment is known.
const LEVELS = { TRACE: 1, DEBUG: 2, INFO: 3, WARN: 4, ERROR: 5, FATAL: 6 };
let lastRequestId;

// An Error as Lambda's JSON log records show it.
function errorRecord(e) {
  return Object.assign({ errorType: e.constructor && e.constructor.name, errorMessage: e.message, stackTrace: String(e.stack || '').split('\n') }, e);
}

// With AWS_LAMBDA_LOG_FORMAT=JSON: `{timestamp, level, requestId, message}` per call; one
// argument is the message as it is (an object stays an object, an Error becomes its record),
// several are util.format'ed, the first Error among them adding its fields beside.
function jsonLine(util, level, args) {
  const record = { timestamp: new Date().toISOString(), level, requestId: lastRequestId };
  const replacer = (_, v) => (v instanceof Error ? errorRecord(v) : v);
  if (args.length === 1) {
    record.message = args[0];
  } else {
    record.message = util.format(...args);
    const err = args.find((a) => a instanceof Error);
    if (err) Object.assign(record, { errorType: err.constructor.name, errorMessage: err.message, stackTrace: String(err.stack || '').split('\n') });
  }
  try {
    return JSON.stringify(record, replacer);
  } catch (_) {
    // Circular, or otherwise not JSON: the message as text.
    record.message = util.format(...args);
    return JSON.stringify(record);
  }
}

function patchConsole() {
  const util = require('util');
  const threshold = LEVELS[(process.env.AWS_LAMBDA_LOG_LEVEL || '').toUpperCase()] || LEVELS.TRACE;
  const json = (process.env.AWS_LAMBDA_LOG_FORMAT || '').toUpperCase() === 'JSON';
  const logger = (level) => {
    if (LEVELS[level] < threshold && level !== 'FATAL') return () => {};
    if (json) {
      return (...args) => process.stdout.write(`${jsonLine(util, level, args).replace(/\n/g, '\r')}\n`);
    }
    return (...args) => {
      const message = util.format(...args).replace(/\n/g, '\r');
      process.stdout.write(`${new Date().toISOString()}\t${lastRequestId}\t${level}\t${message}\n`);
    };
  };
  console.trace = logger('TRACE');
  console.debug = logger('DEBUG');
  console.info = logger('INFO');
  console.log = console.info;
  console.warn = logger('WARN');
  console.error = logger('ERROR');
  console.fatal = logger('FATAL');
}

async function main() {
  if (process.env.SYLPH_PREWARM) {
    await becomeFunction();
    delete process.env.SYLPH_PREWARM;
  }
  patchConsole();
  // A pre-started runtime began before the function's NODE_OPTIONS were known; source maps
  // (bundled handlers) can still be switched on now, as node would have at start.
  if (/--enable-source-maps\b/.test(process.env.NODE_OPTIONS || '') && process.setSourceMapsEnabled) {
    process.setSourceMapsEnabled(true);
  }
  pointAwsSdkV2AtSylph();
  let handler;
  try {
    handler = await loadHandler();
  } catch (e) {
    await postError(null, e, e && e.name && e.name.startsWith('Runtime.') ? e.name : undefined);
    process.exit(1);
  }
  process.on('uncaughtException', async (e) => {
    console.error('Uncaught Exception', e && e.stack ? e.stack : e);
    if (currentRequestId) {
      try { await postError(currentRequestId, e, 'Runtime.UncaughtException'); } catch (_) {}
    }
    process.exit(129);
  });
  process.on('unhandledRejection', async (reason) => {
    const e = reason instanceof Error ? reason : new Error(String(reason));
    console.error('Unhandled Promise Rejection', e.stack);
    if (currentRequestId) {
      try { await postError(currentRequestId, e, 'Runtime.UnhandledPromiseRejection'); } catch (_) {}
    }
    process.exit(128);
  });
  for (;;) {
    const next = await transport.next();
    const requestId = next.headers['lambda-runtime-aws-request-id'];
    currentRequestId = requestId;
    lastRequestId = requestId;
    const trace = next.headers['lambda-runtime-trace-id'];
    if (trace) process.env._X_AMZN_TRACE_ID = trace;
    else delete process.env._X_AMZN_TRACE_ID;
    let event;
    try {
      event = JSON.parse(next.body.toString('utf8'));
    } catch (e) {
      await postError(requestId, e, 'Runtime.UnmarshalError');
      continue;
    }
    const { err, result } = await runHandler(handler, event, next.headers);
    if (err) {
      await postError(requestId, err);
    } else {
      let body;
      try {
        body = toJson(result);
      } catch (e) {
        await postError(requestId, e, 'Runtime.MarshalError');
        continue;
      }
      await transport.respond(requestId, body);
    }
    currentRequestId = null;
  }
}

main().catch((e) => {
  console.error('sylph node bootstrap failed', e);
  process.exit(1);
});
