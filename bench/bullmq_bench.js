'use strict';
// BullMQ throughput, direct vs through respscope, in one run.
//
//   node bench/bullmq_bench.js [--jobs 10000] [--rounds 5] [--concurrency 10] [--threads N]
//                              [--append-results bench/RESULTS.md]
//
// Starts its own redis-server and respscope (RESPSCOPE_BIN or build/respscope, BullMQ tracking
// on, default settings, its default IO threads unless --threads) on free loopback ports. Every
// round measures both targets, the order alternating from round to round: a Queue adds --jobs
// jobs (addBulk, 500 per call), then a Worker with a no-op processor (concurrency
// --concurrency) processes them; jobs/s = jobs / (time from the worker's creation to its last
// 'completed' event). Medians over the rounds.
// BullMQ 6.7.0 + ioredis 6.0.0 from tests/e2e/node (npm ci --prefix tests/e2e/node first).
// At the end respscope's own counts for the bench queues are checked against the jobs run.
// --append-results replaces the section "## BullMQ jobs/s (bench/bullmq_bench.js)" of the given
// markdown file (up to the next "## " heading), or appends it at the end.
const fs = require('fs');
const os = require('os');
const net = require('net');
const path = require('path');
const http = require('http');
const { spawn, execFileSync } = require('child_process');
const { createRequire } = require('module');

const ROOT = path.resolve(__dirname, '..');
const nodeRequire = createRequire(path.join(ROOT, 'tests', 'e2e', 'node', 'package.json'));
const { Queue, Worker } = nodeRequire('bullmq');

const args = process.argv.slice(2);
function opt(name, def) {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : def;
}
const JOBS = Number(opt('jobs', 10000));
const ROUNDS = Number(opt('rounds', 5));
const CONCURRENCY = Number(opt('concurrency', 10));
const THREADS_ASKED = opt('threads', null);  // null: respscope's own default
const APPEND = opt('append-results', null);
const BIN = process.env.RESPSCOPE_BIN || path.join(ROOT, 'build', 'respscope');

const children = [];
process.on('exit', () => { for (const c of children) { try { c.kill('SIGKILL'); } catch (e) { /* gone */ } } });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => process.stderr.write(`${a.join(' ')}\n`);

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
    s.on('error', reject);
  });
}

async function waitPort(port, ms = 10000) {
  const end = Date.now() + ms;
  for (;;) {
    const ok = await new Promise((r) => {
      const c = net.connect(port, '127.0.0.1', () => { c.destroy(); r(true); });
      c.on('error', () => r(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`nothing listens on ${port}`);
    await sleep(50);
  }
}

function cpuSeconds(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(')').pop().trim().split(/\s+/);
  return (Number(f[11]) + Number(f[12])) / 100;  // utime + stime, USER_HZ = 100
}

function getJson(port, p) {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: p }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => { try { resolve(JSON.parse(body)); } catch (e) { reject(e); } });
    }).on('error', reject);
  });
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

async function measure(target, name, rsPid) {
  const connection = { host: '127.0.0.1', port: target.port };
  const queue = new Queue(name, { connection });
  await queue.waitUntilReady();
  let t = Date.now();
  for (let i = 0; i < JOBS; i += 500) {
    const n = Math.min(500, JOBS - i);
    await queue.addBulk(Array.from({ length: n }, (_, k) => ({ name: 'noop', data: { i: i + k } })));
  }
  const addRate = JOBS / ((Date.now() - t) / 1000);
  let done = 0;
  let finish;
  const allDone = new Promise((r) => { finish = r; });
  const cpu0 = rsPid ? cpuSeconds(rsPid) : 0;
  const redisCpu0 = cpuSeconds(target.redisPid);
  const node0 = process.cpuUsage();
  t = Date.now();
  const worker = new Worker(name, async () => {}, { connection, concurrency: CONCURRENCY });
  worker.on('completed', () => { if (++done === JOBS) finish(Date.now()); });
  worker.on('error', (e) => log('worker error', e.message));
  const end = await allDone;
  const cpu = rsPid ? cpuSeconds(rsPid) - cpu0 : 0;
  const redisCpu = cpuSeconds(target.redisPid) - redisCpu0;
  const nodeCpu = process.cpuUsage(node0);
  const rate = JOBS / ((end - t) / 1000);
  await worker.close();
  await queue.close();
  return {
    addRate, rate, cpuPerJobUs: rsPid ? (cpu / JOBS) * 1e6 : 0,
    nodeUsPerJob: (nodeCpu.user + nodeCpu.system) / JOBS,
    redisUsPerJob: (redisCpu / JOBS) * 1e6,
  };
}

async function main() {
  const redisPort = await freePort();
  const rsPort = await freePort();
  const adminPort = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bullmq-bench-'));
  const redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '',
    '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  children.push(redis);
  await waitPort(redisPort);
  const cfgPath = path.join(dir, 'respscope.yaml');
  fs.writeFileSync(cfgPath, 'bullmq:\n  enabled: true\n  prefixes: ["bull"]\n  inspector_interval: 5s\n');
  const rs = spawn(BIN, ['--config', cfgPath, '--listen', `127.0.0.1:${rsPort}`, '--upstream',
    `redis://127.0.0.1:${redisPort}`, '--admin', `127.0.0.1:${adminPort}`,
    ...(THREADS_ASKED === null ? [] : ['--threads', THREADS_ASKED])],
  { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(rs);
  // The start-up line says how many IO threads run; warnings and errors pass through.
  let rsLog = '';
  rs.stderr.on('data', (chunk) => {
    rsLog += chunk.toString();
    for (const line of chunk.toString().split('\n')) {
      if (/\b(warn|warning|error|critical)\b/i.test(line)) process.stderr.write(line + '\n');
    }
  });
  await waitPort(rsPort);
  const threadsMatch = await (async () => {
    for (let i = 0; i < 100; i++) {
      const m = /\((\d+) IO threads/.exec(rsLog);
      if (m) return m;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`respscope did not log its IO threads:\n${rsLog}`);
  })();
  const THREADS = Number(threadsMatch[1]);
  const version = execFileSync(BIN, ['--version']).toString().trim();
  const load0 = os.loadavg();

  const targets = [{ name: 'direct', port: redisPort, redisPid: redis.pid },
    { name: 'respscope', port: rsPort, redisPid: redis.pid }];
  const rows = { direct: [], respscope: [] };
  // Warm-up (JIT, connections): not measured.
  for (const tg of targets) await measure(tg, `warmup-${tg.name}`, 0);
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? targets : [...targets].reverse();
    for (const tg of order) {
      const m = await measure(tg, `bench-${r}-${tg.name}`, tg.name === 'respscope' ? rs.pid : 0);
      rows[tg.name].push(m);
      log(`round ${r + 1}/${ROUNDS} ${tg.name.padEnd(9)} process ${m.rate.toFixed(0)} jobs/s, add ${m.addRate.toFixed(0)} jobs/s, ` +
        `node CPU ${m.nodeUsPerJob.toFixed(1)} us/job, redis CPU ${m.redisUsPerJob.toFixed(1)} us/job` +
        (m.cpuPerJobUs ? `, respscope CPU ${m.cpuPerJobUs.toFixed(1)} us/job` : ''));
    }
  }
  const load1 = os.loadavg();

  // respscope kept count: every bench queue through it shows JOBS added, active and completed.
  const api = await getJson(adminPort, '/api/v1/queues');
  const mine = api.queues.filter((q) => /^bench-\d+-respscope$/.test(q.name) || q.name === 'warmup-respscope');
  const exact = mine.length === ROUNDS + 1 && mine.every((q) =>
    q.transitions.added === JOBS && q.transitions.active === JOBS && q.transitions.completed === JOBS);
  const counted = mine.map((q) => `${q.name}: added ${q.transitions.added}, active ${q.transitions.active}, completed ${q.transitions.completed}`);

  const d = rows.direct.map((x) => x.rate);
  const v = rows.respscope.map((x) => x.rate);
  const ratios = v.map((x, i) => x / d[i]);
  const da = rows.direct.map((x) => x.addRate);
  const va = rows.respscope.map((x) => x.addRate);
  const addRatios = va.map((x, i) => x / da[i]);
  const cpu = median(rows.respscope.map((x) => x.cpuPerJobUs));
  const med = (t, k) => median(rows[t].map((x) => x[k])).toFixed(1);
  const f0 = (x) => Math.round(x).toLocaleString('en-US');
  const f2 = (x) => x.toFixed(2);
  const range = (xs) => `${f2(Math.min(...xs))}–${f2(Math.max(...xs))}`;
  const cmd = `node bench/bullmq_bench.js ${args.join(' ')}`.trim();
  const bullmqVersion = nodeRequire('bullmq/package.json').version;
  const md = [
    '## BullMQ jobs/s (bench/bullmq_bench.js)',
    '',
    `Written by \`${cmd}\` (it replaces this section when run again; \`bench/run.py\` regenerates the ` +
      `rest of this file and keeps it) on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC: ` +
      `BullMQ ${bullmqVersion} + ioredis ${nodeRequire('ioredis/package.json').version}, no-op processor, ` +
      `concurrency ${CONCURRENCY}, ${f0(JOBS)} jobs per measurement, ${ROUNDS} rounds (direct and respscope ` +
      `alternating first), medians with the (min–max) of the per-round ratios. ${version}, ${THREADS} IO threads, ` +
      `BullMQ tracking on. ${os.cpus().length} cores shared by node, redis-server and respscope; ` +
      `load average ${load0.map(f2).join(' ')} at start, ${load1.map(f2).join(' ')} at end.`,
    '',
    '| | direct | respscope | ratio |',
    '|---|---:|---:|---:|',
    `| processed jobs/s (Worker, concurrency ${CONCURRENCY}) | ${f0(median(d))} | ${f0(median(v))} | ${f2(median(ratios))} (${range(ratios)}) |`,
    `| added jobs/s (addBulk of 500) | ${f0(median(da))} | ${f0(median(va))} | ${f2(median(addRatios))} (${range(addRatios)}) |`,
    `| CPU per processed job, us (user + system): node (the Worker) | ${med('direct', 'nodeUsPerJob')} | ${med('respscope', 'nodeUsPerJob')} | |`,
    `| CPU per processed job, us: redis-server | ${med('direct', 'redisUsPerJob')} | ${med('respscope', 'redisUsPerJob')} | |`,
    `| CPU per processed job, us: respscope (all threads) | | ${cpu.toFixed(1)} | |`,
    '',
    `Goal: processed jobs/s through respscope >= 0.9 x direct: **${median(ratios) >= 0.9 ? 'met' : 'not met'}** ` +
      `(${f2(median(ratios))}). CPU rows: /proc/<pid>/stat (10 ms ticks) and process.cpuUsage() over the ` +
      `worker phase, divided by the jobs. respscope's own counts for the ${ROUNDS + 1} queues it carried (warm-up included): ` +
      `${exact ? `exact (added = active = completed = ${f0(JOBS)} each)` : `NOT exact: ${counted.join('; ')}`}.`,
    '',
    'Per round (processed jobs/s, direct / respscope): ' +
      d.map((x, i) => `${f0(x)} / ${f0(v[i])}`).join('; ') + '.',
    '',
  ].join('\n');
  process.stdout.write(`${md}\n`);
  if (APPEND) {
    // Replaces this section only (up to the next "## " heading); appends it when absent.
    const text = fs.existsSync(APPEND) ? fs.readFileSync(APPEND, 'utf8') : '';
    const at = text.indexOf('\n## BullMQ jobs/s (bench/bullmq_bench.js)');
    let out;
    if (at >= 0) {
      const next = text.indexOf('\n## ', at + 1);
      out = text.slice(0, at + 1) + md + (next >= 0 ? '\n' + text.slice(next + 1) : '');
    } else {
      out = `${text.replace(/\n*$/, '')}${text ? '\n\n' : ''}${md}`;
    }
    fs.writeFileSync(APPEND, out.replace(/\n*$/, '\n'));
    log(`wrote its section to ${APPEND}`);
  }
  rs.kill('SIGTERM');
  redis.kill('SIGTERM');
  await sleep(200);
  fs.rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}

main().catch((e) => { log(e.stack || e); process.exit(1); });
