// The official tus server (@tus/server with @tus/file-store) as the tests' evidence store.
//
// Additions, all outside the tus protocol code itself:
// - every request but OPTIONS must carry `Authorization: Bearer <token>` (onIncomingRequest),
//   others get 401;
// - the checksum extension (sha256), when started with TUS_CHECKSUM=1: @tus/server 2.x does
//   not implement it, so the datastore's write buffers the PATCH body, checks the
//   Upload-Checksum header and answers 460 on a mismatch without storing anything, and
//   OPTIONS lists `checksum` with `Tus-Checksum-Algorithm: sha256`;
// - GET /_test/stats: per upload, the bytes that reached the datastore (re-sent bytes
//   included), PATCH counts and a timeline, so tests can count what a client re-sent;
// - POST /_test/fault?method=PATCH&status=503&count=1: answer the next requests of that
//   method with that status (460 fails the checksum of the next PATCHes instead).
//
// Configuration by environment: TUS_MODULES (the node_modules with @tus/*), TUS_PORT,
// TUS_DIR (the store), TUS_TOKEN, TUS_CHECKSUM (0 | 1).

import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';

const modules = process.env.TUS_MODULES;
const port = Number.parseInt(process.env.TUS_PORT, 10);
const directory = process.env.TUS_DIR;
const token = process.env.TUS_TOKEN;
const checksum = process.env.TUS_CHECKSUM === '1';
const TUS_PATH = '/files';

// The packages live in a cache outside the repo; resolve them there.
const resolver = createRequire(path.join(modules, 'resolver.cjs'));
const load = (name) => import(pathToFileURL(resolver.resolve(name)).href);
const { Server } = await load('@tus/server');
const { FileStore } = await load('@tus/file-store');

const context = new AsyncLocalStorage();
const stats = { uploads: {}, requests: {}, unauthorized: 0 };
const faults = [];

function uploadStats(id) {
  stats.uploads[id] ??= {
    received: 0,
    stored: 0,
    patches: 0,
    checksummed: 0,
    checksum_failures: 0,
    first_byte_ms: null,
    last_byte_ms: null,
    timeline: [],
  };
  return stats.uploads[id];
}

function fail(status_code, body) {
  return { status_code, body: `${body}\n` };
}

const store = new FileStore({ directory });
if (checksum) {
  store.extensions.push('checksum');
}

// Count every byte that reaches the store; with checksums, check before storing.
const write = store.write.bind(store);
store.write = async (readable, id, offset) => {
  const entry = uploadStats(id);
  entry.patches += 1;
  const ctx = context.getStore();
  const header = ctx?.headers['upload-checksum'];
  const counted = async function* () {
    for await (const chunk of readable) {
      const now = Date.now();
      entry.received += chunk.length;
      entry.first_byte_ms ??= now;
      entry.last_byte_ms = now;
      entry.timeline.push([now, entry.received]);
      yield chunk;
    }
  };
  if (!checksum || header === undefined) {
    const newOffset = await write(Readable.from(counted()), id, offset);
    entry.stored += newOffset - offset;
    return newOffset;
  }
  entry.checksummed += 1;
  const [algorithm, expected] = header.split(' ');
  if (algorithm !== 'sha256') {
    throw fail(400, 'Unsupported checksum algorithm');
  }
  const parts = [];
  for await (const chunk of counted()) {
    parts.push(chunk);
  }
  const body = Buffer.concat(parts);
  const actual = createHash('sha256').update(body).digest('base64');
  if (actual !== expected || ctx.corrupt) {
    entry.checksum_failures += 1;
    throw fail(460, 'Checksum Mismatch');
  }
  const newOffset = await write(Readable.from([body]), id, offset);
  entry.stored += newOffset - offset;
  return newOffset;
};

const tus = new Server({
  path: TUS_PATH,
  datastore: store,
  async onIncomingRequest(req) {
    if (req.headers.get('authorization') !== `Bearer ${token}`) {
      stats.unauthorized += 1;
      throw fail(401, 'Unauthorized');
    }
  },
});

if (checksum) {
  const options = tus.handlers.OPTIONS;
  const send = options.send.bind(options);
  options.send = async (...args) => {
    const res = await send(...args);
    res.headers.set('Tus-Checksum-Algorithm', 'sha256');
    return res;
  };
}

function takeFault(method) {
  const index = faults.findIndex((f) => f.method === method && f.count > 0);
  if (index < 0) {
    return null;
  }
  faults[index].count -= 1;
  return faults[index].status;
}

function json(res, status, value) {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': body.length });
  res.end(body);
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://test.invalid');
  if (url.pathname === '/_test/stats') {
    json(res, 200, stats);
    return;
  }
  if (url.pathname === '/_test/fault') {
    faults.push({
      method: url.searchParams.get('method'),
      status: Number.parseInt(url.searchParams.get('status'), 10),
      count: Number.parseInt(url.searchParams.get('count') ?? '1', 10),
    });
    json(res, 200, { ok: true });
    return;
  }
  stats.requests[req.method] = (stats.requests[req.method] ?? 0) + 1;
  const status = takeFault(req.method);
  const ctx = { headers: req.headers, corrupt: status === 460 };
  if (status !== null && status !== 460) {
    // Read the body first, so the client sees this answer and not a reset connection.
    req.resume();
    req.on('end', () => {
      res.writeHead(status, { 'Tus-Resumable': '1.0.0', 'Content-Length': 0 });
      res.end();
    });
    return;
  }
  context.run(ctx, () => tus.handle(req, res));
});
server.listen(port, '127.0.0.1', () => {
  console.log(`tus server listening on ${port}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
