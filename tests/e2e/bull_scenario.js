'use strict';
// Bull (4.16.5) workload for tests/e2e/test_bull.py: producer and processors of the real npm
// package, connected through respscope; ground truth from Bull's own API (getJobCounts, the
// queue's local events) and this script's bookkeeping.
//
//   node bull_scenario.js run '<json config>'           the whole mix; prints "RESULT {json}"
//   node bull_scenario.js stall-worker '<json config>'  (internal) processes the stall job and
//                                                        waits to be SIGKILLed
//
// Config: {lib: "bull", via: {host, port} (respscope), direct: {host, port} (redis: ground
// truth and SCRIPT LOAD only), prefix, queue, stallQueue, evalshaFirst, checkpoint}.
// evalshaFirst: see bullmq_scenario.js (scripts SCRIPT LOADed directly into Redis first, Bull's
// ioredis patched to send EVALSHA first: respscope never sees a script body).
const path = require('path');
const { createRequire } = require('module');
const { spawn } = require('child_process');

const nodeRequire = createRequire(path.join(__dirname, 'node', 'package.json'));
const mode = process.argv[2];
const cfg = JSON.parse(process.argv[3]);
const libDir = path.dirname(nodeRequire.resolve(`${cfg.lib}/package.json`));
const libRequire = createRequire(path.join(libDir, 'package.json'));

const { log, sleep, patchEvalshaFirst } = require('./scenario_common');


// SCRIPT LOAD every script Bull ships, straight into Redis (not through respscope).
async function preloadScripts() {
  const IORedis = libRequire('ioredis');
  const scripts = libRequire('./lib/scripts/index.js');
  const direct = new IORedis({ ...cfg.direct, maxRetriesPerRequest: null });
  let n = 0;
  for (const k of Object.keys(scripts)) {
    await direct.script('LOAD', scripts[k].content);
    n++;
  }
  await direct.quit();
  return n;
}

if (cfg.evalshaFirst) patchEvalshaFirst(libRequire);
const Bull = libRequire('./');

const prefix = cfg.prefix;
const STALL_SETTINGS = { lockDuration: 2000, stalledInterval: 1000, maxStalledCount: 1 };
const queueOpts = (conn, settings = {}) => ({ redis: { ...conn }, prefix, settings });

async function stallWorker() {
  const q = new Bull(cfg.stallQueue, queueOpts(cfg.via, STALL_SETTINGS));
  q.on('error', (e) => log('stall-worker error', e.message));
  q.process('*', 1, async (job) => {
    process.stdout.write(`ACTIVE ${job.id}\n`);
    await new Promise(() => {});  // until SIGKILL
  });
}

// --------------------------------------------------------------------------------- bookkeeping
const book = {
  added: {}, addedKind: {}, active: {}, progress: {}, completed: {}, failed: {},
  retriedBackoff: {}, retriedNow: {}, stalled: {}, removed: {}, cleaned: {}, paused: {},
  resumed: {}, completedIds: {}, failedIds: {}, removedIds: {}, failedReasons: {}, attempts: {},
};
function inc(field, q, n = 1) { book[field][q] = (book[field][q] || 0) + n; }
function kind(q, k) {
  book.addedKind[q] = book.addedKind[q] || { waiting: 0, delayed: 0, prioritized: 0 };
  book.addedKind[q][k]++;
}
function pushId(field, q, id) { (book[field][q] = book[field][q] || []).push(String(id)); }

// Bull emits 'failed' for every failed attempt, final or not.
function trackQueue(queue, q) {
  queue.on('active', () => inc('active', q));
  queue.on('completed', (job) => { inc('completed', q); pushId('completedIds', q, job.id); });
  queue.on('failed', (job, err) => {
    const final = job._discarded || book.attempts[`${q}/${job.id}`] >= (job.opts.attempts || 1);
    if (final) {
      inc('failed', q);
      pushId('failedIds', q, job.id);
      book.failedReasons[`${q}/${job.id}`] = err.message;
    } else if (job.opts.backoff) {
      inc('retriedBackoff', q);
    } else {
      inc('retriedNow', q);
    }
  });
  queue.on('stalled', () => inc('stalled', q));
  queue.on('error', (e) => log('queue error', q, e.message));
}

// Expected respscope counters for queue q (definitions: analytics/jobs/job_types.h).
function expectedFor(q) {
  const k = book.addedKind[q] || { waiting: 0, delayed: 0, prioritized: 0 };
  const g = (f) => book[f][q] || 0;
  return {
    added: g('added'),
    // Bull's delayed -> wait promotions (updateDelaySet) are not counted: invisible per job.
    waiting: k.waiting + g('retriedNow') + g('stalled'),
    delayed: k.delayed + g('retriedBackoff'),
    prioritized: k.prioritized,
    waiting_children: 0,
    active: g('active'),
    progress: g('progress'),
    completed: g('completed'),
    failed: g('failed'),
    retried: g('retriedBackoff') + g('retriedNow'),
    stalled: g('stalled'),
    removed: g('removed'),
    paused: g('paused'),
    resumed: g('resumed'),
    drained: 0,
    cleaned: g('cleaned'),
    obliterated: 0,
  };
}

async function groundTruth(queueName) {
  // Directly from Redis: none of this goes through respscope.
  const q = new Bull(queueName, queueOpts(cfg.direct));
  const counts = await q.getJobCounts();
  await q.close();
  return { counts };
}

async function checkpoint(name, data) {
  process.stdout.write(`CHECKPOINT ${JSON.stringify({ name, ...data })}\n`);
  await new Promise((resolve) => {
    const onData = (d) => {
      if (String(d).includes('\n')) { process.stdin.off('data', onData); process.stdin.pause(); resolve(); }
    };
    process.stdin.on('data', onData);
    process.stdin.resume();
  });
}

async function waitFor(what, pred, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timeout waiting for ${what}: ${JSON.stringify(book)}`);
    await sleep(50);
  }
}

async function run() {
  const t0 = Date.now();
  const scriptsPreloaded = cfg.evalshaFirst ? await preloadScripts() : 0;
  const Q = cfg.queue;
  const SQ = cfg.stallQueue;
  const queue = new Bull(Q, queueOpts(cfg.via));
  trackQueue(queue, Q);
  await queue.isReady();

  await queue.pause(); inc('paused', Q);   // global pause (pause-5 script)
  await queue.resume(); inc('resumed', Q);

  const adds = [];
  const add = async (name, data, opts, k) => {
    const job = await queue.add(name, data, opts);
    inc('added', Q); kind(Q, k);
    return job;
  };
  for (let i = 0; i < 12; i++) adds.push(add('plain', { i, progress: i % 3 === 0 }, {}, 'waiting'));
  for (let i = 0; i < 4; i++) adds.push(add('delayed', { i }, { delay: 700 + 150 * i }, 'delayed'));
  for (let i = 0; i < 4; i++) adds.push(add('prio', { i }, { priority: i + 1 }, 'prioritized'));
  for (let i = 0; i < 3; i++) {
    adds.push(add('flaky-backoff', { i }, { attempts: 3, backoff: { type: 'fixed', delay: 250 } }, 'waiting'));
  }
  for (let i = 0; i < 2; i++) adds.push(add('flaky-now', { i }, { attempts: 2 }, 'waiting'));
  for (let i = 0; i < 2; i++) {
    adds.push(add('doomed', { i }, { attempts: 2, backoff: { type: 'fixed', delay: 100 } }, 'waiting'));
  }
  adds.push(add('discarded', {}, { attempts: 3 }, 'waiting'));
  adds.push(add('fail-once', {}, {}, 'waiting'));
  const toRemove = add('to-remove', {}, { delay: 60000 }, 'delayed');
  adds.push(toRemove);
  await Promise.all(adds);

  const rm = await toRemove;
  await rm.remove();
  inc('removed', Q); pushId('removedIds', Q, rm.id);

  if (cfg.checkpoint) {
    await checkpoint('before-workers', { queue: Q, expected: expectedFor(Q), counts: (await groundTruth(Q)).counts });
  }

  queue.process('*', 4, async (job) => {
    const key = `${Q}/${job.id}`;
    const attempt = book.attempts[key] = (book.attempts[key] || 0) + 1;
    await sleep(5 + (attempt * 7) % 20);
    switch (job.name) {
      case 'plain':
        if (job.data.progress) {
          await job.progress(50); inc('progress', Q);
          await job.progress(100); inc('progress', Q);
        }
        return { ok: job.id };
      case 'flaky-backoff':
        if (attempt < 3) throw new Error(`flaky (backoff) attempt ${attempt}`);
        return 'recovered';
      case 'flaky-now':
        if (attempt < 2) throw new Error(`flaky (no backoff) attempt ${attempt}`);
        return 'recovered';
      case 'doomed':
        throw new Error(`doomed attempt ${attempt}`);
      case 'discarded':
        job.discard();
        throw new Error('discarded failure');
      case 'fail-once':
        throw new Error('single attempt failure');
      default:
        return job.name;
    }
  });

  // Stall: a processor in a child process takes the job and is SIGKILLed mid-job.
  const sq = new Bull(SQ, queueOpts(cfg.via, STALL_SETTINGS));
  trackQueue(sq, SQ);
  await sq.add('stall-me', {}); inc('added', SQ); kind(SQ, 'waiting');
  const child = spawn(process.execPath, [__filename, 'stall-worker', JSON.stringify(cfg)],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  const stallId = await new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error('stall worker never took the job')), 20000);
    child.stdout.on('data', (d) => {
      buf += d;
      const m = /ACTIVE (\S+)\n/.exec(buf);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
  });
  inc('active', SQ);
  book.attempts[`${SQ}/${stallId}`] = 1;
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  log('stall worker killed holding job', stallId);
  sq.process('*', 1, async (job) => {
    book.attempts[`${SQ}/${job.id}`]++;
    return 'after-stall';
  });

  const finished = () => (book.completed[Q] || 0) + (book.failed[Q] || 0);
  const expectFinished = book.added[Q] - book.removed[Q];
  await waitFor('main queue to finish', () => finished() === expectFinished, 60000);
  await waitFor('stalled job to complete', () => (book.completed[SQ] || 0) === 1, 30000);
  // Bull emits 'stalled' after reading the job back: give the event a moment.
  await waitFor('stalled event', () => (book.stalled[SQ] || 0) === 1, 5000);

  const cleanedIds = await sq.clean(0, 'completed');
  inc('cleaned', SQ, cleanedIds.length);
  await queue.close();
  await sq.close();

  const expected = { [Q]: expectedFor(Q), [SQ]: expectedFor(SQ) };
  const truth = { [Q]: await groundTruth(Q), [SQ]: await groundTruth(SQ) };
  const out = {
    lib: cfg.lib,
    version: libRequire('./package.json').version,
    scriptsPreloaded,
    expected,
    truth,
    ids: {
      completed: book.completedIds, failed: book.failedIds, removed: book.removedIds,
      stalled: String(stallId),
    },
    failedReasons: book.failedReasons,
    attempts: book.attempts,
    seconds: (Date.now() - t0) / 1000,
  };
  process.stdout.write(`RESULT ${JSON.stringify(out)}\n`, () => process.exit(0));
}

if (mode === 'run') {
  process.on('unhandledRejection', (e) => { log('unhandled', e && e.stack); process.exit(1); });
}
(mode === 'stall-worker' ? stallWorker() : run()).catch((e) => {
  log('FAILED', e.stack || e);
  process.exit(1);
});
