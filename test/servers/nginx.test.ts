// The nginx advice of docs/servers.md, checked against a real nginx: the `location` block is taken
// from the docs as written and served behind an `http` block with `gzip on; gzip_types
// text/event-stream;` (what a site-wide config often has). A stream through it must arrive
// uncompressed and unbuffered. Skipped with a notice when nginx is not installed, unless
// TOKENRELAY_REQUIRE_NGINX=1.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http, { type Server } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGunzip } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TokenChunk } from 'tokenrelay';
import { sendSSE } from 'tokenrelay/node';

const NGINX = process.env.TOKENRELAY_NGINX ?? '/usr/sbin/nginx';
const available = existsSync(NGINX);
if (!available) {
  if (process.env.TOKENRELAY_REQUIRE_NGINX === '1') throw new Error(`nginx not found at ${NGINX} (TOKENRELAY_REQUIRE_NGINX=1)`);
  console.info(`skipped: nginx not found at ${NGINX}; install it (apt-get install nginx) to check the nginx advice of docs/servers.md`);
}

const docs = readFileSync(new URL('../../docs/servers.md', import.meta.url), 'utf8');
const documented = /## Behind nginx[\s\S]*?```nginx\n(?<block>location \/chat \{\n[\s\S]*?\n\})\n```/.exec(docs)?.groups?.block;

/** How long the source holds its second token when the first has not reached the client. */
const HOLD_MS = 3000;
const releases = new Set<() => void>();

// The first token, then nothing until the client has it (or HOLD_MS passed), then the end:
// a proxy that buffers keeps the first token until the hold ends.
async function* held(signal: AbortSignal): AsyncGenerator<TokenChunk> {
  yield { token: 'first', index: 0, timestamp: 0, type: 'text' };
  await new Promise<void>((resolve) => {
    const release = (): void => {
      clearTimeout(timer);
      releases.delete(release);
      resolve();
    };
    const timer = setTimeout(release, HOLD_MS);
    releases.add(release);
    signal.addEventListener('abort', release, { once: true });
  });
  yield { token: ' second', index: 1, timestamp: 0, type: 'text', finishReason: 'stop' };
}

interface Probe {
  contentEncoding: string | undefined;
  /** The first token reached the client while the source was holding the rest. */
  unbuffered: boolean;
  firstTokenMs: number;
  body: string;
}

/** GETs `path` through nginx with `Accept-Encoding: gzip` and reads the stream as it comes. */
function probe(port: number, path: string): Promise<Probe> {
  return new Promise((resolve, reject) => {
    const startedAt = performance.now();
    const request = http.get({ host: '127.0.0.1', port, path, headers: { 'accept-encoding': 'gzip' }, agent: false }, (response) => {
      const encoding = response.headers['content-encoding'];
      const body = encoding === 'gzip' ? response.pipe(createGunzip()) : response;
      let text = '';
      let unbuffered = false;
      let firstTokenMs = Number.NaN;
      body.setEncoding('utf8');
      body.on('data', (chunk: string) => {
        text += chunk;
        if (Number.isNaN(firstTokenMs) && text.includes('"token":"first"')) {
          firstTokenMs = performance.now() - startedAt;
          unbuffered = releases.size > 0;
          for (const release of releases) release();
        }
      });
      body.on('end', () => resolve({ contentEncoding: encoding, unbuffered, firstTokenMs, body: text }));
      body.on('error', reject);
    });
    request.on('error', reject);
    request.setTimeout(10_000, () => request.destroy(new Error(`no answer from nginx for ${path} in 10 s`)));
  });
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe.skipIf(!available)('behind nginx, configured as docs/servers.md says', () => {
  let app: Server;
  let nginx: ChildProcess | undefined;
  let prefix: string;
  let port: number;
  let exited: Promise<void> = Promise.resolve();

  beforeAll(async () => {
    if (documented === undefined) throw new Error('No nginx `location /chat` block in the nginx section of docs/servers.md');
    app = http.createServer((req, res) => void sendSSE(req, res, (signal) => held(signal), { heartbeatMs: 60_000 }));
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    port = await freePort();
    prefix = mkdtempSync(join(tmpdir(), 'tokenrelay-nginx-'));
    const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((name) => `${name}_temp_path ${join(prefix, name)};`);
    const config = `
daemon off;
master_process off;
worker_processes 1;
pid ${join(prefix, 'nginx.pid')};
error_log ${join(prefix, 'error.log')} warn;
events { worker_connections 64; }
http {
  access_log off;
  ${temp.join('\n  ')}
  gzip on;
  gzip_types text/event-stream;
  upstream app { server 127.0.0.1:${(app.address() as AddressInfo).port}; keepalive 4; }
  server {
    listen 127.0.0.1:${port};
    # As documented.
    ${documented.replace('location /chat', 'location /documented')}
    # As documented, without the optional proxy_buffering line: X-Accel-Buffering: no does it.
    ${documented.replace('location /chat', 'location /header-only').replace(/^ *proxy_buffering off;.*\n/m, '')}
    # What the docs said before: gzip left on (Cache-Control: no-transform does not stop nginx).
    location /gzip-on { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering off; }
    # Buffering on (the header ignored, as a layer that strips it would), without and with gzip.
    location /buffered { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_ignore_headers X-Accel-Buffering; gzip off; }
    location /buffered-gzip { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_ignore_headers X-Accel-Buffering; }
  }
}
`;
    writeFileSync(join(prefix, 'nginx.conf'), config);
    const child = spawn(NGINX, ['-p', prefix, '-c', join(prefix, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
    nginx = child;
    let stderr = '';
    child.stderr?.on('data', (data: Buffer) => void (stderr += String(data)));
    exited = new Promise((resolve) => child.once('exit', () => resolve()));
    for (let attempt = 0; ; attempt++) {
      if (child.exitCode !== null) throw new Error(`nginx exited: ${stderr}`);
      const open = await new Promise<boolean>((resolve) => {
        const socket = net.connect(port, '127.0.0.1', () => resolve(socket.end() !== undefined));
        socket.on('error', () => resolve(false));
      });
      if (open) break;
      if (attempt === 100) throw new Error(`nginx did not listen on ${port} within 5 s: ${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });

  afterAll(async () => {
    if (nginx?.exitCode === null) {
      nginx.kill('SIGTERM');
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
    }
    await new Promise((resolve) => app?.close(resolve));
    if (prefix !== undefined) rmSync(prefix, { recursive: true, force: true });
  });

  it('the documented location passes the stream uncompressed and unbuffered, even with gzip on for text/event-stream', async () => {
    const result = await probe(port, '/documented');
    console.info(`nginx, documented location: Content-Encoding ${result.contentEncoding ?? 'none'}, first token after ${result.firstTokenMs.toFixed(1)} ms, unbuffered: ${result.unbuffered}`);
    expect(result.contentEncoding).toBeUndefined();
    expect(result.unbuffered).toBe(true);
    expect(result.body).toContain('event: done');
  });

  it('X-Accel-Buffering: no alone turns buffering off (proxy_buffering line removed)', async () => {
    const result = await probe(port, '/header-only');
    expect(result.contentEncoding).toBeUndefined();
    expect(result.unbuffered).toBe(true);
  });

  it('measured: nginx gzips the stream despite Cache-Control: no-transform when gzip is on for it', async () => {
    const result = await probe(port, '/gzip-on');
    console.info(`nginx, gzip on: Content-Encoding ${result.contentEncoding ?? 'none'}, first token after ${result.firstTokenMs.toFixed(1)} ms, unbuffered: ${result.unbuffered}`);
    expect(result.contentEncoding).toBe('gzip');
    expect(result.body).toContain('event: done');
  });

  it('measured: with the header ignored (buffering on), gzip holds the tokens until the end; the probe sees it', async () => {
    const plain = await probe(port, '/buffered');
    const gzipped = await probe(port, '/buffered-gzip');
    for (const [path, result] of [['/buffered', plain], ['/buffered-gzip', gzipped]] as const) {
      console.info(`nginx, ${path}: Content-Encoding ${result.contentEncoding ?? 'none'}, first token after ${result.firstTokenMs.toFixed(1)} ms, unbuffered: ${result.unbuffered}`);
    }
    expect(gzipped.contentEncoding).toBe('gzip');
    expect(gzipped.unbuffered).toBe(false);
    expect(gzipped.firstTokenMs).toBeGreaterThanOrEqual(HOLD_MS - 50);
  });
});
