'use strict';
// BullMQ steps for tests/e2e/test_insights_bullmq.py; each call is one short-lived process.
//
//   node insights_jobs.js '<json>'   {port, queue, step, n, ...}
//     step "add":   add n jobs (removeOnComplete / removeOnFail as given), then exit
//     step "work":  process jobs until n finished (behaviour "ok" | "fail" (every job whose
//                   index % 5 < failPer5 fails) | "sleep" (sleepMs each)), concurrency c
//     step "take":  take one job with a short lock and print "TOOK" (the test SIGKILLs it)
//     step "recover": a worker with a short stalledInterval until n finished (the stalled
//                   job is moved back and completed)
const path = require('path');
const { createRequire } = require('module');

const nodeRequire = createRequire(path.join(__dirname, 'node', 'package.json'));
const { Queue, Worker } = nodeRequire('bullmq');
const { log, sleep } = require('./scenario_common');

const cfg = JSON.parse(process.argv[2]);
const connection = { host: '127.0.0.1', port: cfg.port, maxRetriesPerRequest: null };

async function main() {
  if (cfg.step === 'add') {
    const q = new Queue(cfg.queue, { connection });
    const opts = {};
    if (cfg.removeOnComplete !== undefined) opts.removeOnComplete = cfg.removeOnComplete;
    if (cfg.removeOnFail !== undefined) opts.removeOnFail = cfg.removeOnFail;
    const jobs = [];
    for (let i = 0; i < cfg.n; i++) jobs.push({ name: 'job', data: { i }, opts });
    await q.addBulk(jobs);
    await q.close();
    return;
  }
  let finished = 0;
  const workerOpts = { connection, concurrency: cfg.c || 1 };
  // The stalled-check key a worker sets lives stalledInterval: keep it short on both sides.
  if (cfg.step === 'take') Object.assign(workerOpts, { lockDuration: 1000, stalledInterval: 300 });
  if (cfg.step === 'recover') {
    Object.assign(workerOpts, { lockDuration: 1000, stalledInterval: 300, maxStalledCount: 5 });
  }
  const worker = new Worker(cfg.queue, async (job) => {
    if (cfg.step === 'take') {
      process.stdout.write('TOOK\n');
      await sleep(600000);
    }
    if (cfg.behaviour === 'sleep') await sleep(cfg.sleepMs);
    if (cfg.behaviour === 'fail' && job.data.i % 5 < cfg.failPer5) throw new Error('boom');
    return 'ok';
  }, workerOpts);
  worker.on('completed', () => { finished++; });
  worker.on('failed', () => { finished++; });
  worker.on('error', (e) => log('worker error', e.message));
  const deadline = Date.now() + (cfg.timeoutMs || 60000);
  while (finished < cfg.n && Date.now() < deadline) await sleep(50);
  await worker.close();
  if (finished < cfg.n) throw new Error(`only ${finished} of ${cfg.n} jobs finished`);
}

main().then(() => process.exit(0), (e) => {
  log('failed:', e.stack || e.message);
  process.exit(1);
});
