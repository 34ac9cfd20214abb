// The faas nodejs20.x runtime: a Lambda Runtime API client that runs inside the container.
//
// Node's standard library only. It speaks HTTP/1.1 (keep-alive, Content-Length bodies) over
// the unix socket the platform mounts at /run/faas/runtime.sock:
//
// 1. GET /faas/v1/environment -> {"handler": "index.handler", "env": {...}}; blocks until the
//    platform gives this (possibly pre-started) container a function.
// 2. load the handler once (CommonJS or ES module, as Lambda resolves it); on failure POST
//    /2018-06-01/runtime/init/error and exit 129.
// 3. loop: GET .../invocation/next, call handler(event, context, callback), POST .../response
//    or .../error.
//
// The programming model follows AWS's Node.js runtime interface client (the one Lambda's
// nodejs20.x runs): async and callback handlers, callbackWaitsForEmptyEventLoop (the result
// of a callback handler is posted once the event loop is empty), context.succeed/fail/done,
// console lines "<time>\t<request id>\t<LEVEL>\t<message>", error bodies
// {errorType, errorMessage, trace}, and Runtime.* errors worded as Lambda words them. This
// file lives at /var/runtime/index.mjs, as Lambda's does, so "Require stack" lines match.

import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import util from 'node:util';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);

const RUNTIME_API = '/2018-06-01/runtime';
const ENVIRONMENT_PATH = '/faas/v1/environment';
const DEFAULT_SOCKET = '/run/faas/runtime.sock';
const CONNECT_WAIT_MS = 5000; // the platform creates the socket before it starts the container
const HEAP_RESTART_STATUS = 75; // tells ./bootstrap to start Node again with other heap limits
const ERROR_TYPE_HEADER = 'Lambda-Runtime-Function-Error-Type';
const FUNCTION_EXPR = /^([^.]*)\.(.*)$/;
const RELATIVE_PATH_SUBSTRING = '..';

// ---- errors, named as Lambda's Node.js runtime names them ----------------------------------

class ImportModuleError extends Error {}
class HandlerNotFound extends Error {}
class MalformedHandlerName extends Error {}
class UserCodeSyntaxError extends Error {}
class NodeJsExit extends Error {
  constructor() {
    super(
      'The Lambda runtime client detected an unexpected Node.js exit code. This is most commonly caused by a Promise that was never settled. For more information, see https://nodejs.org/docs/latest/api/process.html#exit-codes',
    );
  }
}
class UnhandledPromiseRejection extends Error {
  constructor(reason, promise) {
    super(reason);
    this.reason = reason;
    this.promise = promise;
  }
}
for (const cls of [ImportModuleError, HandlerNotFound, MalformedHandlerName, UserCodeSyntaxError, NodeJsExit, UnhandledPromiseRejection]) {
  cls.prototype.name = `Runtime.${cls.name}`;
}

/** The Runtime API connection failed: the container cannot go on. */
class RuntimeAPIError extends Error {}

function isErrorLike(obj) {
  return Boolean(
    obj && obj.name && obj.message && obj.stack &&
    typeof obj.name === 'string' && typeof obj.message === 'string' && typeof obj.stack === 'string',
  );
}

function intoError(err) {
  return err instanceof Error ? err : new Error(err);
}

/** The body posted for a failed invocation or init: {errorType, errorMessage, trace}. */
export function toRapidResponse(error) {
  try {
    if (util.types.isNativeError(error) || isErrorLike(error)) {
      return {
        errorType: error.name?.replaceAll('\x7F', '%7F'),
        errorMessage: error.message?.replaceAll('\x7F', '%7F'),
        trace: error.stack.replaceAll('\x7F', '%7F').split('\n'),
      };
    }
    return { errorType: typeof error, errorMessage: error.toString(), trace: [] };
  } catch (_err) {
    return {
      errorType: 'handled',
      errorMessage:
        'callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack',
    };
  }
}

function withEnumerableProperties(value) {
  if (value instanceof Error) {
    const out = Object.assign({ errorType: value.name, errorMessage: value.message, code: value.code }, value);
    if (typeof value.stack === 'string') out.stack = value.stack.split('\n');
    return out;
  }
  return value;
}

/** An error as the log shows it: a tab, then JSON with errorType, errorMessage and stack. */
export function toFormatted(error) {
  try {
    return '\t' + JSON.stringify(error, (_k, v) => withEnumerableProperties(v));
  } catch (_err) {
    return '\t' + JSON.stringify(toRapidResponse(error));
  }
}

// ---- console: Lambda's text log format --------------------------------------------------

const LEVELS = Object.freeze({
  TRACE: { name: 'TRACE', priority: 1 },
  DEBUG: { name: 'DEBUG', priority: 2 },
  INFO: { name: 'INFO', priority: 3 },
  WARN: { name: 'WARN', priority: 4 },
  ERROR: { name: 'ERROR', priority: 5 },
  FATAL: { name: 'FATAL', priority: 6 },
});
const REQUEST_ID = Symbol.for('aws.lambda.runtime.requestId');

function logText(level, message, ...params) {
  // One log event per call: newlines inside the message become carriage returns.
  const line = `${new Date().toISOString()}\t${globalThis[REQUEST_ID]}\t${level.name}\t${util.format(message, ...params)}`;
  process.stdout.write(line.replace(/\n/g, '\r') + '\n');
}

function patchConsole() {
  const threshold = LEVELS[process.env.AWS_LAMBDA_LOG_LEVEL?.toUpperCase()] ?? LEVELS.TRACE;
  const nop = () => {};
  const at = (level) => (level.priority >= threshold.priority ? (msg, ...params) => logText(level, msg, ...params) : nop);
  console.trace = at(LEVELS.TRACE);
  console.debug = at(LEVELS.DEBUG);
  console.info = at(LEVELS.INFO);
  console.log = console.info;
  console.warn = at(LEVELS.WARN);
  console.error = at(LEVELS.ERROR);
  console.fatal = (msg, ...params) => logText(LEVELS.FATAL, msg, ...params);
}

function logError(message, error) {
  console.error(message, toFormatted(intoError(error)));
}

// ---- HTTP/1.1 over the environment's unix socket ------------------------------------------

/**
 * One keep-alive connection, one request at a time. The socket is unref'd while no request
 * is in flight, so that it never keeps the event loop alive by itself: 'beforeExit' then
 * tells when a callback handler's work is done, as on Lambda. A request made while another
 * is in flight (an uncaught exception while waiting for the next event) gets a connection
 * of its own.
 */
class RuntimeClient {
  constructor(socketPath) {
    this.socketPath = socketPath;
    this.sock = null;
    this.busy = false;
    this.pending = null;
    this.head = null; // {status, headers, length} of the response being read
    this.chunks = [];
    this.received = 0;
    this.buf = null;
  }

  async connect() {
    const deadline = Date.now() + CONNECT_WAIT_MS;
    for (;;) {
      try {
        this.attach(await openSocket(this.socketPath));
        return;
      } catch (e) {
        if ((e.code !== 'ENOENT' && e.code !== 'ECONNREFUSED') || Date.now() > deadline) {
          throw new RuntimeAPIError(`cannot connect to the Runtime API at ${this.socketPath}: ${e.message}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    }
  }

  attach(sock) {
    this.sock = sock;
    sock.unref();
    sock.on('data', (chunk) => this.onData(chunk));
    sock.on('error', (e) => this.onClose(e));
    sock.on('close', () => this.onClose(null));
  }

  onClose(error) {
    this.sock = null;
    this.head = null;
    this.buf = null;
    const pending = this.pending;
    this.pending = null;
    this.busy = false;
    if (pending) pending.reject(new RuntimeAPIError(`the Runtime API closed the connection${error ? ': ' + error.message : ''}`));
  }

  async request(method, target, body = '', headers = {}) {
    if (this.busy) {
      const extra = new RuntimeClient(this.socketPath);
      await extra.connect();
      try {
        return await extra.request(method, target, body, headers);
      } finally {
        extra.sock?.destroy();
      }
    }
    if (!this.sock) await this.connect();
    this.busy = true;
    const length = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
    let head = `${method} ${target} HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${length}\r\n`;
    for (const name in headers) head += `${name}: ${headers[name]}\r\n`;
    head += '\r\n';
    const sock = this.sock;
    const done = new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
    });
    sock.ref();
    if (length === 0) {
      sock.write(head);
    } else if (typeof body === 'string' && length < 65536) {
      sock.write(head + body);
    } else {
      sock.cork();
      sock.write(head);
      sock.write(body);
      sock.uncork();
    }
    if (this.buf && this.buf.length) {
      // Faas-Direct: 2: the answer may have arrived ahead, with the previous response.
      const ahead = this.buf;
      this.buf = null;
      process.nextTick(() => this.onData(ahead));
    }
    return done;
  }

  onData(chunk) {
    if (this.pending === null) {
      // Nothing asked yet: an answer sent ahead (Faas-Direct: 2) waits for its request.
      this.buf = this.buf ? Buffer.concat([this.buf, chunk]) : chunk;
      return;
    }
    if (this.head === null) {
      this.buf = this.buf ? Buffer.concat([this.buf, chunk]) : chunk;
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const lines = this.buf.toString('latin1', 0, end).split('\r\n');
      const headers = {};
      for (let i = 1; i < lines.length; i++) {
        const colon = lines[i].indexOf(':');
        if (colon > 0) headers[lines[i].slice(0, colon).trim().toLowerCase()] = lines[i].slice(colon + 1).trim();
      }
      this.head = { status: parseInt(lines[0].split(' ')[1], 10), headers, length: parseInt(headers['content-length'] || '0', 10) };
      chunk = this.buf.subarray(end + 4);
      this.buf = null;
      this.chunks = [];
      this.received = 0;
    }
    if (chunk.length) {
      this.chunks.push(chunk);
      this.received += chunk.length;
    }
    if (this.received < this.head.length) return;
    const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    const { status, headers, length } = this.head;
    // Bytes past this response: the next answer, sent ahead (Faas-Direct: 2); kept for it.
    if (all.length > length) this.buf = Buffer.from(all.subarray(length));
    this.head = null;
    this.chunks = [];
    const pending = this.pending;
    this.pending = null;
    this.busy = false;
    if (this.sock) this.sock.unref();
    if (headers.connection === 'close') {
      this.sock?.destroy();
      this.sock = null;
    }
    pending?.resolve({ status, headers, body: all.subarray(0, length) });
  }

  async getEnvironment() {
    const res = await this.request('GET', ENVIRONMENT_PATH);
    if (res.status !== 200) {
      throw new RuntimeAPIError(`GET ${ENVIRONMENT_PATH} answered ${res.status}: ${res.body.toString('utf8', 0, 200)}`);
    }
    return JSON.parse(res.body.toString('utf8'));
  }

  async nextInvocation() {
    // Faas-Direct: this client uses one connection strictly in turn, so the platform may
    // drive it from the calling thread (no thread hand-offs on a warm call); 2: it keeps bytes
    // read past a response, so the answer to a result may come with the next event.
    const res = await this.request('GET', `${RUNTIME_API}/invocation/next`, '', { 'Faas-Direct': '2' });
    if (res.status !== 200) throw new RuntimeAPIError(`GET ${RUNTIME_API}/invocation/next answered ${res.status}`);
    return { bodyJson: res.body.toString('utf8'), headers: res.headers };
  }

  postInvocationResponse(response, id, callback) {
    const body = serializeResponse(response);
    this.post(`${RUNTIME_API}/invocation/${encodeURIComponent(id)}/response`, body, {}, callback);
  }

  postInvocationError(error, id, callback) {
    const response = toRapidResponse(error);
    this.post(`${RUNTIME_API}/invocation/${encodeURIComponent(id)}/error`, serializeResponse(response),
      { [ERROR_TYPE_HEADER]: headerSafe(response.errorType) }, callback);
  }

  postInitError(error, callback) {
    const response = toRapidResponse(error);
    this.post(`${RUNTIME_API}/init/error`, serializeResponse(response),
      { [ERROR_TYPE_HEADER]: headerSafe(response.errorType) }, callback);
  }

  post(target, body, headers, callback) {
    this.request('POST', target, body, { 'Content-Type': 'application/json', ...headers }).then(
      () => callback(),
      (e) => fatal(e),
    );
  }
}

function openSocket(socketPath) {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(socketPath);
    sock.once('connect', () => {
      sock.off('error', reject);
      resolve(sock);
    });
    sock.once('error', reject);
  });
}

function serializeResponse(body) {
  try {
    return JSON.stringify(body === undefined ? null : body);
  } catch (_err) {
    throw new Error('Unable to stringify response body');
  }
}

function headerSafe(value) {
  return String(value ?? 'Unhandled').replace(/[^\x20-\x7e]/g, '');
}

function fatal(error) {
  process.stderr.write(`faas runtime: ${error.message || error}\n`);
  process.exit(1);
}

// ---- loading the handler, as Lambda resolves it ---------------------------------------------

function moduleRootAndHandler(fullHandlerString) {
  const handlerString = path.basename(fullHandlerString);
  return [fullHandlerString.substring(0, fullHandlerString.indexOf(handlerString)), handlerString];
}

function splitHandlerString(handler) {
  const match = handler.match(FUNCTION_EXPR);
  if (!match || match.length !== 3) throw new MalformedHandlerName('Bad handler');
  return [match[1], match[2]];
}

function resolveHandler(object, nestedProperty) {
  return nestedProperty.split('.').reduce((nested, key) => nested && nested[key], object);
}

function tryRequireFile(file, extension = '') {
  const p = file + extension;
  return fs.existsSync(p) ? require(p) : undefined;
}

async function tryAwaitImport(file, extension = '') {
  const p = file + extension;
  return fs.existsSync(p) ? await import(pathToFileURL(p).href) : undefined;
}

function hasPackageJsonTypeModule(folder) {
  // The nearest package.json decides; a node_modules folder, or the root, ends the search.
  if (folder.endsWith('/node_modules')) return false;
  const pj = path.join(folder, 'package.json');
  if (fs.existsSync(pj)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(pj));
      if (pkg) return pkg.type === 'module';
    } catch (e) {
      console.warn(`${pj} cannot be read, it will be ignored for ES module detection purposes.`, e);
      return false;
    }
  }
  if (folder === '/') return false;
  return hasPackageJsonTypeModule(path.resolve(folder, '..'));
}

async function tryRequire(appRoot, moduleRoot, module) {
  const lambdaStylePath = path.resolve(appRoot, moduleRoot, module);
  const extensionless = tryRequireFile(lambdaStylePath);
  if (extensionless) return extensionless;
  const pjHasModule = hasPackageJsonTypeModule(path.resolve(path.dirname(lambdaStylePath)));
  if (!pjHasModule) {
    const loaded = tryRequireFile(lambdaStylePath, '.js');
    if (loaded) return loaded;
  }
  const loaded =
    (pjHasModule && (await tryAwaitImport(lambdaStylePath, '.js'))) ||
    (await tryAwaitImport(lambdaStylePath, '.mjs')) ||
    tryRequireFile(lambdaStylePath, '.cjs');
  if (loaded) return loaded;
  // require() resolves relative to this file, not /var/task: resolve against the task root.
  const nodeStylePath = require.resolve(module, { paths: [appRoot, moduleRoot] });
  return require(nodeStylePath);
}

async function loadUserApp(appRoot, moduleRoot, module) {
  try {
    return await tryRequire(appRoot, moduleRoot, module);
  } catch (e) {
    if (e instanceof SyntaxError) throw new UserCodeSyntaxError(e);
    if (e.code !== undefined && e.code === 'MODULE_NOT_FOUND') throw new ImportModuleError(e);
    throw e;
  }
}

/** The handler function named by fullHandlerString ('file.export', 'dir/file.obj.fn'). */
export async function loadHandler(appRoot, fullHandlerString) {
  if (fullHandlerString.includes(RELATIVE_PATH_SUBSTRING)) {
    throw new MalformedHandlerName(
      `'${fullHandlerString}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`,
    );
  }
  const [moduleRoot, moduleAndHandler] = moduleRootAndHandler(fullHandlerString);
  const [module, handlerPath] = splitHandlerString(moduleAndHandler);
  const userApp = await loadUserApp(appRoot, moduleRoot, module);
  const handlerFunc = resolveHandler(userApp, handlerPath);
  if (!handlerFunc) throw new HandlerNotFound(`${fullHandlerString} is undefined or not exported`);
  if (typeof handlerFunc !== 'function') throw new HandlerNotFound(`${fullHandlerString} is not a function`);
  return handlerFunc;
}

// ---- one invocation: callback, context ----------------------------------------------------

const BEFORE_EXIT = Symbol.for('aws.lambda.beforeExit');
const NO_OP = () => {};
const beforeExit = {
  invoke: () => globalThis[BEFORE_EXIT](),
  reset: () => (globalThis[BEFORE_EXIT] = NO_OP),
  set: (listener) => (globalThis[BEFORE_EXIT] = listener),
};

/** [callback, context (its callback part), markCompleted]; only the first completion counts. */
function buildCallbackContext(client, id, scheduleNext) {
  const postError = (err, callback) => {
    logError('Invoke Error', err);
    client.postInvocationError(err, id, callback);
  };
  let completed = false;
  const complete = (result, callback) => {
    if (completed) {
      console.error('Invocation has already been reported as done. Cannot call complete more than once per invocation.');
      return;
    }
    completed = true;
    client.postInvocationResponse(result, id, callback);
  };
  let waitForEmptyEventLoop = true;
  const callback = (err, result) => {
    beforeExit.reset();
    if (err !== undefined && err !== null) {
      postError(err, scheduleNext);
    } else if (!waitForEmptyEventLoop) {
      complete(result, scheduleNext);
    } else {
      beforeExit.set(() => setImmediate(() => complete(result, scheduleNext)));
    }
  };
  const done = (err, result) => {
    beforeExit.reset();
    if (err !== undefined && err !== null) postError(err, scheduleNext);
    else complete(result, scheduleNext);
  };
  const context = {
    get callbackWaitsForEmptyEventLoop() {
      return waitForEmptyEventLoop;
    },
    set callbackWaitsForEmptyEventLoop(value) {
      waitForEmptyEventLoop = value;
    },
    succeed: (result) => done(null, result),
    fail: (err) => (err === undefined || err === null ? done('handled') : done(err, null)),
    done,
  };
  let finished = false;
  const once = (fn) =>
    function (...args) {
      if (!finished) {
        fn(...args);
        finished = true;
      }
    };
  context.succeed = once(context.succeed);
  context.fail = once(context.fail);
  context.done = once(context.done);
  return [once(callback), context, () => (completed = true)];
}

function parseJsonHeader(value, name) {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value);
  } catch (err) {
    throw new Error(`Cannot parse ${name} as json: ${err.toString()}`);
  }
}

function attachEnvironmentData(context, headers) {
  const trace = headers['lambda-runtime-trace-id'];
  if (trace) process.env._X_AMZN_TRACE_ID = trace;
  else delete process.env._X_AMZN_TRACE_ID;
  const env = process.env;
  const deadline = Number(headers['lambda-runtime-deadline-ms']);
  return Object.assign(
    context,
    {
      functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
      functionName: env.AWS_LAMBDA_FUNCTION_NAME,
      memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
      logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
      logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
    },
    {
      clientContext: parseJsonHeader(headers['lambda-runtime-client-context'], 'ClientContext'),
      identity: parseJsonHeader(headers['lambda-runtime-cognito-identity'], 'CognitoIdentity'),
      invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'],
      awsRequestId: headers['lambda-runtime-aws-request-id'],
      getRemainingTimeInMillis: () => deadline - Date.now(),
    },
  );
}

function isPromise(obj) {
  return Boolean(obj && obj.then && typeof obj.then === 'function');
}

class Runtime {
  constructor(client, handler, errorCallbacks) {
    this.client = client;
    this.handler = handler;
    this.errorCallbacks = errorCallbacks;
    this.isAsync = handler.constructor?.name === 'AsyncFunction';
  }

  scheduleIteration() {
    setImmediate(() => {
      this.handleOnce().then(NO_OP, (err) => {
        if (err instanceof RuntimeAPIError) fatal(err);
        console.log(`Unexpected Top Level Error: ${err.toString()}`);
        this.errorCallbacks.uncaughtException(err);
      });
    });
  }

  async handleOnce() {
    const { bodyJson, headers } = await this.client.nextInvocation();
    const id = headers['lambda-runtime-aws-request-id'];
    globalThis[REQUEST_ID] = id;
    const [callback, callbackContext, markCompleted] = buildCallbackContext(this.client, id, () => this.scheduleIteration());
    try {
      this.setErrorCallbacks(id);
      this.setDefaultExitListener(id, markCompleted);
      const result = this.handler(JSON.parse(bodyJson), attachEnvironmentData(callbackContext, headers), callback);
      if (isPromise(result)) {
        result.then(callbackContext.succeed, callbackContext.fail).catch(callbackContext.fail);
      }
    } catch (err) {
      callback(err);
    }
  }

  setErrorCallbacks(id) {
    this.errorCallbacks.uncaughtException = (error) => {
      this.client.postInvocationError(error, id, () => process.exit(129));
    };
    this.errorCallbacks.unhandledRejection = (error) => {
      this.client.postInvocationError(error, id, () => process.exit(128));
    };
  }

  /** The event loop emptied before the handler finished: an async handler's promise never settled. */
  setDefaultExitListener(id, markCompleted) {
    beforeExit.set(() => {
      markCompleted();
      if (this.isAsync) {
        const error = new NodeJsExit();
        logError('Invoke Error', error);
        this.client.postInvocationError(error, id, () => this.scheduleIteration());
      } else {
        this.client.postInvocationResponse(null, id, () => this.scheduleIteration());
      }
    });
  }
}

// ---- main ---------------------------------------------------------------------------------

// The container half of `faas invoke --debug`: a relay, in a process of its own (the
// inspector's waitForDebugger() holds this one's event loop), that dials the platform's unix
// socket and, once an IDE speaks through it, connects to the inspector on this container's
// own loopback. Then it dials again, for the IDE's next connection (/json, then the socket).
const DEBUG_RELAY = `
const net = require('node:net');
const [path, port] = process.argv.slice(1);
function dial() {
  const outer = net.createConnection(path);
  outer.once('error', () => setTimeout(dial, 200));
  outer.once('connect', () => {
    outer.once('data', (first) => {
      const inner = net.createConnection(Number(port), '127.0.0.1');
      inner.write(first);
      outer.pipe(inner);
      inner.pipe(outer);
      const end = () => { outer.destroy(); inner.destroy(); };
      for (const s of [outer, inner]) { s.on('close', end); s.on('error', end); }
      dial();
    });
  });
}
dial();
`;

async function startDebugger(debug) {
  const inspector = await import('node:inspector');
  const { spawn } = await import('node:child_process');
  const port = Number(debug.port) || 9229;
  inspector.open(port, '127.0.0.1', false);
  const relay = spawn(process.execPath, ['-e', DEBUG_RELAY, debug.socket || '/run/faas/debug.sock', String(port)],
    { stdio: ['ignore', 'inherit', 'inherit'] });
  relay.unref();
  process.stderr.write('faas debug: waiting for a debugger to attach\n');
  inspector.waitForDebugger();
  process.stderr.write('faas debug: debugger attached\n');
}

// AWS_ENDPOINT_URL_LAMBDA's port on this container's own loopback (so `network: none` too):
// forwarded to the platform's Lambda API socket, so the JS SDK calls other functions here.
const AWS_RELAY_PORT = 9002;

function startAwsRelay(socketPath) {
  const server = net.createServer((conn) => {
    const up = net.createConnection(socketPath);
    conn.pipe(up);
    up.pipe(conn);
    const fail = () => { conn.destroy(); up.destroy(); };
    conn.on('error', fail);
    up.on('error', fail);
  });
  server.on('error', (e) => {
    process.stderr.write(`faas runtime: the Lambda API forwarder cannot listen on 127.0.0.1:${AWS_RELAY_PORT}: ${e.message}\n`);
  });
  server.listen(AWS_RELAY_PORT, '127.0.0.1');
  server.unref(); // it does not keep the process alive (the event loop empties as on Lambda)
}

async function main() {
  const awsSocket = process.env.FAAS_AWS_SOCKET;
  delete process.env.FAAS_AWS_SOCKET;
  if (awsSocket) startAwsRelay(awsSocket);
  const client = new RuntimeClient(process.env.FAAS_RUNTIME_SOCKET || DEFAULT_SOCKET);
  let spec;
  try {
    await client.connect();
    spec = await client.getEnvironment();
  } catch (e) {
    fatal(e);
  }
  // The heap was sized for the container's memory at start; a pre-started container has
  // been resized since: start again (bootstrap) with limits for the function's memory.
  const heapMb = process.env.FAAS_HEAP_MEMORY_MB;
  const final = process.env.FAAS_HEAP_FINAL === '1';
  delete process.env.FAAS_HEAP_MEMORY_MB;
  delete process.env.FAAS_HEAP_FINAL;
  const memory = spec.env?.AWS_LAMBDA_FUNCTION_MEMORY_SIZE;
  if (heapMb && memory && String(memory) !== heapMb && !final) process.exit(HEAP_RESTART_STATUS);
  for (const [key, value] of Object.entries(spec.env || {})) process.env[key] = String(value);
  if (spec.handler) process.env._HANDLER = spec.handler;
  const taskRoot = process.env.LAMBDA_TASK_ROOT || '/var/task';
  try {
    process.chdir(taskRoot);
  } catch (_e) {
    // the image's working directory stays
  }
  patchConsole();
  if (spec.debug) await startDebugger(spec.debug);

  const errorCallbacks = {
    uncaughtException: (error) => client.postInitError(error, () => process.exit(129)),
    unhandledRejection: (error) => client.postInitError(error, () => process.exit(128)),
  };
  process.on('uncaughtException', (error) => {
    logError('Uncaught Exception', error);
    errorCallbacks.uncaughtException(error);
  });
  process.on('unhandledRejection', (reason, promise) => {
    const error = new UnhandledPromiseRejection(reason?.toString(), promise);
    logError('Unhandled Promise Rejection', error);
    errorCallbacks.unhandledRejection(error);
  });
  beforeExit.reset();
  process.on('beforeExit', beforeExit.invoke);

  let handler;
  try {
    handler = await loadHandler(taskRoot, process.env._HANDLER || '');
  } catch (e) {
    logError('Uncaught Exception', e);
    errorCallbacks.uncaughtException(e);
    return;
  }
  new Runtime(client, handler, errorCallbacks).scheduleIteration();
}

main();
