'use strict';
// BullMQ workload for tests/e2e/test_bullmq.py: producer, FlowProducer and workers of the real
// npm package, connected through respscope; ground truth from BullMQ's own API (getJobCounts,
// the events stream, the workers' events) and this script's bookkeeping.
//
//   node bullmq_scenario.js run '<json config>'           the whole mix; prints "RESULT {json}"
//   node bullmq_scenario.js stall-worker '<json config>'  (internal) a worker that takes the
//                                                          stall job and waits to be SIGKILLed
//
// Config: {lib: "bullmq" | "bullmq5", via: {host, port} (respscope), direct: {host, port}
// (redis, for ground-truth reads and SCRIPT LOAD only), prefix, queue, stallQueue,
// evalshaFirst: bool, flushScripts: bool, extras: bool}.
//
// evalshaFirst: ioredis 5/6 send the full script body (EVAL) on the first call of a script on
// each socket, so a proxy on a fresh connection always sees bodies. To reproduce "respscope
// started after the application loaded its scripts" (and the behaviour of ioredis 4 and of the
// node-redis / glide adapters: EVALSHA first), every script is SCRIPT LOADed into Redis over
// a DIRECT connection first, and the application's ioredis is patched to send EVALSHA first
// (EVAL only after a NOSCRIPT). respscope then never sees a script body and must identify
// every script by the shape of its KEYS.
//
// flushScripts (tests/fixtures/record.py): SCRIPT FLUSH over the direct connection once a third
// of the main queue has finished, so that the workers' sockets meet NOSCRIPT mid-run.
// extras (tests/fixtures/record.py): run extras() below instead of the mix.
const path = require('path');
const { createRequire } = require('module');
const { spawn } = require('child_process');

const nodeRequire = createRequire(path.join(__dirname, 'node', 'package.json'));
const mode = process.argv[2];
const cfg = JSON.parse(process.argv[3]);
const libDir = path.dirname(nodeRequire.resolve(`${cfg.lib}/package.json`));
const libRequire = createRequire(path.join(libDir, 'package.json'));

const { log, sleep, patchEvalshaFirst } = require('./scenario_common');


// SCRIPT LOAD every script the library ships, straight into Redis (not through respscope).
async function preloadScripts() {
  const IORedis = libRequire('ioredis');
  const scripts = libRequire(`./dist/cjs/scripts`);
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
const bullmq = libRequire('./');
const { Queue, Worker, FlowProducer, UnrecoverableError } = bullmq;

const via = { ...cfg.via };
const prefix = cfg.prefix;
const WORKER_OPTS = { lockDuration: 2000, stalledInterval: 1000, maxStalledCount: 1 };

async function stallWorker() {
  const worker = new Worker(
    cfg.stallQueue,
    async (job) => {
      process.stdout.write(`ACTIVE ${job.id}\n`);
      await new Promise(() => {});  // until SIGKILL
    },
    { connection: via, prefix, concurrency: 1, ...WORKER_OPTS },
  );
  worker.on('error', (e) => log('stall-worker error', e.message));
}

// --------------------------------------------------------------------------------- bookkeeping
const book = {
  added: {},        // queue -> jobs created (add calls, flow nodes)
  addedKind: {},    // queue -> {waiting, delayed, prioritized, waiting_children}
  active: {},       // queue -> worker 'active' events (+ the stall worker's activation)
  progress: {},     // queue -> successful updateProgress calls
  completed: {},    // queue -> worker 'completed' events
  failed: {},       // queue -> worker 'failed' events that were final
  retriedBackoff: {},   // queue -> failed attempts retried after a backoff (moveToDelayed)
  retriedNow: {},       // queue -> failed attempts retried at once (retryJob)
  stalled: {},      // queue -> worker 'stalled' events
  removed: {},      // queue -> successful job.remove()
  cleaned: {},      // queue -> ids returned by queue.clean()
  paused: {}, resumed: {},
  drained: {}, obliterated: {},  // queue.drain() / queue.obliterate() calls
  completedIds: {}, failedIds: {}, failedReasons: {}, removedIds: {},
  attempts: {},     // jobId -> attempts started (by this bookkeeping)
};
function inc(field, q, n = 1) { book[field][q] = (book[field][q] || 0) + n; }
function kind(q, k) {
  book.addedKind[q] = book.addedKind[q] || { waiting: 0, delayed: 0, prioritized: 0, waiting_children: 0 };
  book.addedKind[q][k]++;
}
function pushId(field, q, id) { (book[field][q] = book[field][q] || []).push(id); }

function trackWorker(worker, q) {
  worker.on('active', () => inc('active', q));
  worker.on('completed', (job) => { inc('completed', q); pushId('completedIds', q, job.id); });
  worker.on('failed', (job, err) => {
    const attempts = job.opts.attempts || 1;
    const final = err instanceof UnrecoverableError || err.name === 'UnrecoverableError' ||
      book.attempts[`${q}/${job.id}`] >= attempts;
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
  worker.on('stalled', () => inc('stalled', q));
  worker.on('error', (e) => log('worker error', q, e.message));
}

// Expected respscope counters for queue q from the bookkeeping so far, with the definitions
// documented in analytics/jobs/job_types.h (Transition).
function expectedFor(q) {
  const k = book.addedKind[q] || { waiting: 0, delayed: 0, prioritized: 0, waiting_children: 0 };
  const g = (f) => book[f][q] || 0;
  return {
    added: g('added'),
    // entered the wait list: added there, retried at once, recovered from a stall. Automatic
    // delayed -> waiting promotions (delayed jobs, backoff retries) and the flow parent's
    // release happen inside other scripts: not counted.
    waiting: k.waiting + g('retriedNow') + g('stalled'),
    delayed: k.delayed + g('retriedBackoff'),
    prioritized: k.prioritized,
    waiting_children: k.waiting_children,
    active: g('active'),
    progress: g('progress'),
    completed: g('completed'),
    failed: g('failed'),
    retried: g('retriedBackoff') + g('retriedNow'),
    stalled: g('stalled'),
    removed: g('removed'),
    paused: g('paused'),
    resumed: g('resumed'),
    drained: g('drained'),
    cleaned: g('cleaned'),
    obliterated: g('obliterated'),
  };
}

// Prints "CHECKPOINT {json}" and waits for a line on stdin (the test checks respscope then).
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

async function groundTruth(queueName) {
  // Read directly from Redis: none of this goes through respscope.
  const q = new Queue(queueName, { connection: { ...cfg.direct }, prefix });
  const counts = await q.getJobCounts('active', 'completed', 'delayed', 'failed', 'paused',
    'prioritized', 'waiting', 'waiting-children');
  const IORedis = libRequire('ioredis');
  const client = new IORedis({ ...cfg.direct });
  const entries = await client.xrange(`${prefix}:${queueName}:events`, '-', '+');
  await client.quit();
  const events = {};
  for (const [, fields] of entries) {
    const f = {};
    for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]] = fields[i + 1];
    const key = f.prev ? `${f.event}<-${f.prev}` : f.event;
    // "cleaned" is one event per clean call with the number of jobs in "count".
    events[key] = (events[key] || 0) + (f.event === 'cleaned' ? Number(f.count) : 1);
  }
  await q.close();
  return { counts, events };
}

async function run() {
  const t0 = Date.now();
  const scriptsPreloaded = cfg.evalshaFirst ? await preloadScripts() : 0;
  const Q = cfg.queue;
  const SQ = cfg.stallQueue;
  const queue = new Queue(Q, { connection: via, prefix });
  queue.on('error', (e) => log('queue error', e.message));

  // Queue-level: pause and resume while empty.
  await queue.pause(); inc('paused', Q);
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
  adds.push(add('unrecoverable', {}, { attempts: 3 }, 'waiting'));
  adds.push(add('fail-once', {}, {}, 'waiting'));
  const toRemove = add('to-remove', {}, { delay: 60000 }, 'delayed');
  adds.push(toRemove);
  await Promise.all(adds);

  // A parent with three children (FlowProducer: one MULTI).
  const flow = new FlowProducer({ connection: via, prefix });
  const tree = await flow.add({
    name: 'flow-parent', queueName: Q, data: {},
    children: [0, 1, 2].map((i) => ({ name: 'flow-child', queueName: Q, data: { i } })),
  });
  inc('added', Q, 4); kind(Q, 'waiting_children');
  for (let i = 0; i < 3; i++) kind(Q, 'waiting');
  await flow.close();

  // A removed job.
  const rm = await toRemove;
  await rm.remove();
  inc('removed', Q); pushId('removedIds', Q, rm.id);

  // Nothing runs yet: respscope's counters and depth gauges must already be exact.
  if (cfg.checkpoint) {
    await checkpoint('before-workers', { queue: Q, expected: expectedFor(Q), counts: (await groundTruth(Q)).counts });
  }

  // Workers.
  const worker = new Worker(Q, async (job) => {
    const key = `${Q}/${job.id}`;
    const attempt = book.attempts[key] = (book.attempts[key] || 0) + 1;
    await sleep(5 + (attempt * 7) % 20);
    switch (job.name) {
      case 'plain':
        if (job.data.progress) {
          await job.updateProgress(50); inc('progress', Q);
          await job.updateProgress({ pct: 100 }); inc('progress', Q);
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
      case 'unrecoverable':
        throw new UnrecoverableError('unrecoverable failure');
      case 'fail-once':
        throw new Error('single attempt failure');
      case 'flow-parent': {
        const values = await job.getChildrenValues();
        return Object.keys(values).length;
      }
      default:
        return job.name;
    }
  }, { connection: via, prefix, concurrency: 4 });
  trackWorker(worker, Q);

  // Stall: a worker in a child process takes the job and is SIGKILLed mid-job.
  const sq = new Queue(SQ, { connection: via, prefix });
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
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  log('stall worker killed holding job', stallId);
  const stallWorker2 = new Worker(SQ, async () => 'after-stall',
    { connection: via, prefix, concurrency: 1, ...WORKER_OPTS });
  trackWorker(stallWorker2, SQ);

  const finished = () => (book.completed[Q] || 0) + (book.failed[Q] || 0);
  const expectFinished = book.added[Q] - book.removed[Q];
  if (cfg.flushScripts) {
    // Redis forgets every script while the workers run: each socket's next EVALSHA is
    // answered NOSCRIPT and ioredis sends that call again as EVAL with the body.
    await waitFor('a third of the main queue', () => finished() >= expectFinished / 3, 60000);
    const IORedis = libRequire('ioredis');
    const direct = new IORedis({ ...cfg.direct });
    await direct.script('FLUSH');
    await direct.quit();
    log('script cache flushed after', finished(), 'jobs');
  }
  await waitFor('main queue to finish', () => finished() === expectFinished, 60000);
  await waitFor('stalled job to complete', () => (book.completed[SQ] || 0) === 1, 30000);
  await worker.close();
  await stallWorker2.close();

  const cleanedIds = await sq.clean(0, 100, 'completed');
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
      flowParent: tree.job.id, stalled: stallId,
    },
    failedReasons: book.failedReasons,
    attempts: book.attempts,
    seconds: (Date.now() - t0) / 1000,
  };
  process.stdout.write(`RESULT ${JSON.stringify(out)}\n`, () => process.exit(0));
}

// The queue-level operations and job kinds run() leaves out, on queue cfg.queue (recorded with
// the hash-tag prefix "{bq}" by tests/fixtures/record.py): a flow parent with two children,
// changePriority, then, with no worker left, queue.drain() with a job waiting, and obliterate
// (which pauses the queue first). Prints "RESULT {json}" like run(); truth is read before the drain.
async function extras() {
  const t0 = Date.now();
  const Q = cfg.queue;
  const queue = new Queue(Q, { connection: via, prefix });
  queue.on('error', (e) => log('queue error', e.message));
  const flow = new FlowProducer({ connection: via, prefix });
  const tree = await flow.add({
    name: 'flow-parent', queueName: Q, data: {},
    children: [0, 1].map((i) => ({ name: 'flow-child', queueName: Q, data: { i } })),
  });
  inc('added', Q, 3); kind(Q, 'waiting_children'); kind(Q, 'waiting'); kind(Q, 'waiting');
  await flow.close();
  const prio = await queue.add('prio-change', {}, { priority: 10 });
  inc('added', Q); kind(Q, 'prioritized');
  await prio.changePriority({ priority: 1 });  // moves within the prioritized set

  const worker = new Worker(Q, async (job) => {
    const key = `${Q}/${job.id}`;
    book.attempts[key] = (book.attempts[key] || 0) + 1;
    if (job.name === 'flow-parent') return Object.keys(await job.getChildrenValues()).length;
    return job.name;
  }, { connection: via, prefix, concurrency: 2 });
  trackWorker(worker, Q);
  await waitFor('the flow and prio-change', () => (book.completed[Q] || 0) === 4, 30000);
  await worker.close();
  const truth = { [Q]: await groundTruth(Q) };

  await queue.add('leftover', {}); inc('added', Q); kind(Q, 'waiting');
  await queue.drain(); inc('drained', Q);
  // Queue.obliterate() pauses the queue first, then obliterates it.
  await queue.obliterate(); inc('paused', Q); inc('obliterated', Q);
  await queue.close();

  // A job whose worker dies, checked with maxStalledCount 0: stalled too often. BullMQ >= 5.53.2
  // moves it back to wait marked to fail, and the next worker to take it fails it.
  const SQ = cfg.stallQueue;
  const sq = new Queue(SQ, { connection: via, prefix });
  await sq.add('stall-fail', {}); inc('added', SQ); kind(SQ, 'waiting');
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
  const checker = new Worker(SQ, async () => 'never runs',
    { connection: via, prefix, concurrency: 1, ...WORKER_OPTS, maxStalledCount: 0 });
  trackWorker(checker, SQ);
  await waitFor('the stalled job to fail', () => (book.failed[SQ] || 0) === 1, 30000);
  await checker.close();
  truth[SQ] = await groundTruth(SQ);
  await sq.close();

  const out = {
    lib: cfg.lib,
    version: libRequire('./package.json').version,
    scriptsPreloaded: 0,
    expected: { [Q]: expectedFor(Q), [SQ]: expectedFor(SQ) },
    truth,
    ids: { completed: book.completedIds, failed: book.failedIds, flowParent: tree.job.id,
      stalled: stallId },
    failedReasons: book.failedReasons,
    attempts: book.attempts,
    seconds: (Date.now() - t0) / 1000,
  };
  process.stdout.write(`RESULT ${JSON.stringify(out)}\n`, () => process.exit(0));
}

const main = mode === 'stall-worker' ? stallWorker : cfg.extras ? extras : run;
main().catch((e) => {
  log('FAILED', e.stack || e);
  process.exit(1);
});
if (mode === 'run') {
  process.on('unhandledRejection', (e) => { log('unhandled', e && e.stack); process.exit(1); });
}
