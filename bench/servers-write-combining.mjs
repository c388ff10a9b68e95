// Server CPU per SSE token frame with write combining on and off (tokenrelay/node `sendSSE`).
//
//   node bench/servers-write-combining.mjs [--clients 8] [--rate 3000] [--seconds 3] [--runs 3]
//
// Needs Node >= 23.6 (runs src/ directly, types stripped). The server runs in this process and
// the clients in a child process, so `process.cpuUsage()` counts the server only. Each client's
// stream is an in-process source paced like a fast provider (`--rate` tokens/s per stream,
// delivered on 1 ms timer ticks, i.e. a few tokens per tick as they come off a provider socket).
import { fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import http from 'node:http';
import { registerHooks } from 'node:module';
import { fileURLToPath } from 'node:url';

const SRC = new URL('../src/', import.meta.url).href;
// src/ imports its siblings as `./x.js` (for the build); point those at the `.ts` files.
registerHooks({
  resolve(specifier, context, next) {
    if (specifier.endsWith('.js') && context.parentURL?.startsWith(SRC)) {
      const url = new URL(specifier, context.parentURL);
      if (!existsSync(fileURLToPath(url))) return next(url.href.replace(/\.js$/, '.ts'), context);
    }
    return next(specifier, context);
  },
});

const args = Object.fromEntries(
  process.argv.slice(2).flatMap((arg, i, all) => (arg.startsWith('--') ? [[arg.slice(2), Number(all[i + 1])]] : [])),
);
const clients = args.clients ?? 8;
const rate = args.rate ?? 3000;
const seconds = args.seconds ?? 3;
const runs = args.runs ?? 3;

if (process.argv[2] === 'client') await runClients(process.argv[3], Number(process.argv[4]));
else await main();

async function main() {
  const { sendSSE } = await import(`${SRC}servers/node.ts`);
  const { tokens } = await import(`${SRC}index.ts`);
  const modes = [
    { name: 'combining on (default)', options: {} },
    { name: 'combining off: one res.write per frame', options: { writeCombining: false } },
    // The same streams with `res.write` stubbed out: what the source, the pipeline and the
    // timers cost without any socket write; subtract it to get the cost of writing.
    { name: 'baseline: res.write stubbed (no socket I/O)', options: {}, stubWrites: true },
  ];
  const rows = new Map(modes.map((mode) => [mode.name, []]));
  for (let run = 0; run < runs; run++) {
    for (const mode of modes) rows.get(mode.name).push(await measure(sendSSE, tokens, mode));
  }
  console.log(`\n${clients} concurrent streams × ${rate} tokens/s for ${seconds} s over loopback; median of ${runs} runs\n`);
  console.log('| mode | frames | res.write calls | frames per write | server CPU | CPU per frame |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const [name, results] of rows) {
    const median = results.sort((a, b) => a.cpuMs / a.frames - b.cpuMs / b.frames)[Math.floor(results.length / 2)];
    console.log(
      `| ${name} | ${median.frames} | ${median.writes} | ${(median.frames / median.writes).toFixed(1)} | ` +
        `${median.cpuMs.toFixed(0)} ms | ${((median.cpuMs * 1000) / median.frames).toFixed(2)} µs |`,
    );
  }
}

async function measure(sendSSE, tokens, { options, stubWrites = false }) {
  const total = Math.round(rate * seconds);
  const frames = clients * (total + 1); // every token, and the done frame
  let writes = 0;
  const results = [];
  const server = http.createServer((req, res) => {
    const { write, end } = res;
    res.write = function (chunk) {
      writes++;
      return stubWrites || write.call(this, chunk);
    };
    res.end = function (chunk) {
      return end.call(this, stubWrites ? undefined : chunk);
    };
    results.push(sendSSE(req, res, tokens(paced(total)), { ...options, statusWindowMs: 0 }));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const child = fork(fileURLToPath(import.meta.url), ['client', `http://127.0.0.1:${server.address().port}/`, String(clients)]);
  await new Promise((resolve) => child.once('message', resolve)); // the child is ready
  const startCpu = process.cpuUsage();
  child.send('go');
  await new Promise((resolve) => child.once('message', resolve));
  await Promise.all(results);
  const cpu = process.cpuUsage(startCpu);
  child.kill();
  await new Promise((resolve) => server.close(resolve));
  return { frames, writes, cpuMs: (cpu.user + cpu.system) / 1000 };
}

/** `total` tokens at `rate` per second: each 1 ms timer tick yields the tokens that are due. */
async function* paced(total) {
  const start = performance.now();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) * rate) / 1000));
    for (; sent < due; sent++) yield ` tok${sent}`;
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

async function runClients(url, count) {
  process.send('ready');
  await new Promise((resolve) => process.once('message', resolve));
  await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise((resolve, reject) => {
          http
            .get(url, { agent: false }, (response) => {
              response.resume();
              response.on('end', resolve);
            })
            .on('error', reject);
        }),
    ),
  );
  process.send('done');
}
