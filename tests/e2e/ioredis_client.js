// ioredis (pinned in tests/e2e/node/package-lock.json) against one Redis port, in RESP2 and
// RESP3: auto-pipelining, explicit pipelines, MULTI/EXEC and WATCH, pub/sub, a blocking pop
// woken by another connection, Lua via defineCommand (EVALSHA, EVAL on NOSCRIPT), binary and
// large values. Driven by test_ioredis.py, run against Redis directly and through respscope.
//
// Usage: node ioredis_client.js PORT|/SOCKET/PATH (a path: ioredis's {path} option, a Unix socket)
// Prints one JSON line {"ok": bool, "checks": {name: true | "why it failed"}}; exit code 0 iff ok.
"use strict";
const path = require("path");
const { createRequire } = require("module");
const Redis = createRequire(path.join(__dirname, "node", "package.json"))("ioredis");

const target = process.argv[2];
const address = target.startsWith("/") ? { path: target } : { host: "127.0.0.1", port: Number(target) };
const checks = {};

function check(name, cond, detail) {
  checks[name] = cond ? true : String(detail === undefined ? "failed" : detail).slice(0, 300);
}

function client(protocol, extra) {
  return new Redis({ ...address, protocol, maxRetriesPerRequest: 0,
                     retryStrategy: () => null, lazyConnect: false, ...extra });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(what + " timed out")), ms);
  });
  try { return await Promise.race([promise, timeout]); } finally { clearTimeout(timer); }
}

async function suite(p) {
  const t = (name) => `resp${p}:${name}`;
  const a = client(p, { enableAutoPipelining: true, connectionName: `ioredis-a-${p}` });
  const b = client(p);
  try {
    // Auto-pipelining: thousands of commands issued in one tick travel in a few writes.
    const n = 5000;
    const sets = [];
    for (let i = 0; i < n; i++) sets.push(a.set(`ap:${p}:${i}`, `value-${i}-${"x".repeat(i % 200)}`));
    const setReplies = await Promise.all(sets);
    const gets = [];
    for (let i = 0; i < n; i++) gets.push(a.get(`ap:${p}:${i}`));
    const values = await Promise.all(gets);
    let bad = 0;
    values.forEach((v, i) => { if (v !== `value-${i}-${"x".repeat(i % 200)}`) bad++; });
    check(t("autopipeline"), bad === 0 && setReplies.every((r) => r === "OK"), `${bad} wrong`);
    const [incrs, name] = await Promise.all([
      Promise.all(Array.from({ length: 500 }, () => a.incr(`ap:${p}:ctr`))),
      a.client("GETNAME"),
    ]);
    check(t("autopipeline_incr"), incrs[499] === 500 && new Set(incrs).size === 500, incrs.slice(-3));
    check(t("connection_name"), name === `ioredis-a-${p}`, name);

    // Explicit pipeline, with an error in the middle.
    const pl = b.pipeline();
    for (let i = 0; i < 1000; i++) pl.rpush(`pl:${p}`, i);
    pl.set(`pl:${p}:s`, "str").lpush(`pl:${p}:s`, "x").lrange(`pl:${p}`, 0, 4).hset(`pl:${p}:h`, "f", "v")
      .hgetall(`pl:${p}:h`);
    const res = await pl.exec();
    check(t("pipeline"), res.length === 1005 && res[999][1] === 1000 && res[1001][0] &&
          /WRONGTYPE/.test(res[1001][0].message) && res[1002][1].join(",") === "0,1,2,3,4" &&
          res[1004][1].f === "v", JSON.stringify(res.slice(999)));

    // MULTI/EXEC, EXECABORT, WATCH aborted by another connection.
    const tx = await b.multi().set(`tx:${p}`, "1").incr(`tx:${p}`).get(`tx:${p}`).exec();
    check(t("multi_exec"), tx.length === 3 && tx[1][1] === 2 && tx[2][1] === "2", JSON.stringify(tx));
    let aborted = null;
    try {
      await b.multi().set(`tx:${p}`, "x").call("NOSUCHCOMMAND").exec();
    } catch (e) { aborted = e; }
    check(t("execabort"), aborted && /EXECABORT/.test(aborted.message), aborted && aborted.message);
    await b.watch(`tx:${p}`);
    await a.set(`tx:${p}`, "changed");
    const watched = await b.multi().set(`tx:${p}`, "mine").exec();
    check(t("watch_abort"), watched === null && (await b.get(`tx:${p}`)) === "changed",
          JSON.stringify(watched));

    // Pub/sub: subscriber connection, messages published by another, in order.
    const sub = client(p);
    const got = [];
    sub.on("message", (ch, msg) => got.push(`${ch}:${msg}`));
    sub.on("pmessage", (pat, ch, msg) => got.push(`${pat}|${ch}:${msg}`));
    await sub.subscribe(`ch1:${p}`, `ch2:${p}`);
    await sub.psubscribe(`pat.${p}.*`);
    const counts = [];
    for (let i = 0; i < 200; i++) {
      counts.push(b.publish(i % 2 ? `ch1:${p}` : `ch2:${p}`, `m${i}`));
      if (i % 50 === 0) counts.push(b.publish(`pat.${p}.x`, `pm${i}`));
    }
    const receivers = await Promise.all(counts);
    for (let i = 0; i < 100 && got.length < 204; i++) await sleep(20);
    const want = [];
    for (let i = 0; i < 200; i++) {
      want.push(`${i % 2 ? `ch1:${p}` : `ch2:${p}`}:m${i}`);
      if (i % 50 === 0) want.push(`pat.${p}.*|pat.${p}.x:pm${i}`);
    }
    check(t("pubsub"), JSON.stringify(got) === JSON.stringify(want) && receivers.every((r) => r === 1),
          `${got.length} messages, first ${got.slice(0, 3)}`);
    // (Named channels: ioredis 6's no-argument unsubscribe() does not resolve while a
    // pattern subscription remains, with or without respscope.)
    const left = await withTimeout(sub.unsubscribe(`ch1:${p}`, `ch2:${p}`), 5000, "unsubscribe");
    const none = await withTimeout(sub.punsubscribe(`pat.${p}.*`), 5000, "punsubscribe");
    check(t("unsubscribe"), left === 1 && none === 0, JSON.stringify([left, none]));
    sub.disconnect();

    // Blocking pop woken by another connection.
    const blocker = client(p);
    const popped = blocker.blpop(`bl:${p}`, 5);
    await sleep(150);
    await b.rpush(`bl:${p}`, "wake");
    const pop = await withTimeout(popped, 6000, "blpop");
    check(t("blpop"), pop && pop[0] === `bl:${p}` && pop[1] === "wake", JSON.stringify(pop));
    const bz = blocker.bzpopmin(`bz:${p}`, 5);
    await sleep(100);
    await b.zadd(`bz:${p}`, 3, "m");
    const bzr = await withTimeout(bz, 6000, "bzpopmin");
    check(t("bzpopmin"), bzr && bzr[1] === "m" && Number(bzr[2]) === 3, JSON.stringify(bzr));
    blocker.disconnect();

    // Lua: defineCommand uses EVALSHA, falling back to EVAL on NOSCRIPT.
    a.defineCommand("echoKeyArg", { numberOfKeys: 1,
                                    lua: "return {KEYS[1], ARGV[1], redis.call('INCR', KEYS[1])}" });
    const l1 = await a.echoKeyArg(`lua:${p}`, "arg");
    const l2 = await a.echoKeyArg(`lua:${p}`, "arg");
    check(t("lua"), l1[0] === `lua:${p}` && l1[1] === "arg" && l1[2] === 1 && l2[2] === 2,
          JSON.stringify([l1, l2]));

    // Binary and large values.
    const bin = Buffer.alloc(256 * 64);
    for (let i = 0; i < bin.length; i++) bin[i] = i % 256;
    await b.set(`bin:${p}`, bin);
    const binBack = await b.getBuffer(`bin:${p}`);
    check(t("binary"), Buffer.compare(bin, binBack) === 0, binBack && binBack.length);
    const big = "0123456789abcdef".repeat(512 * 1024); // 8 MiB
    await a.set(`big:${p}`, big);
    const bigBack = await a.get(`big:${p}`);
    check(t("large_value"), bigBack === big, bigBack && bigBack.length);

    // Types that differ between RESP2 and RESP3 as ioredis maps them.
    await b.zadd(`z:${p}`, 1.5, "a", 2, "b");
    const zr = await b.zrange(`z:${p}`, 0, -1, "WITHSCORES");
    const zs = await b.zscore(`z:${p}`, "a");
    check(t("zset"), JSON.stringify(zr) === JSON.stringify(["a", "1.5", "b", "2"]) && zs === "1.5",
          JSON.stringify([zr, zs]));
    const missing = await b.get(`missing:${p}`);
    check(t("null"), missing === null, missing);
  } finally {
    a.disconnect();
    b.disconnect();
  }
}

(async () => {
  for (const p of [2, 3]) {
    try {
      await withTimeout(suite(p), 60000, `resp${p} suite`);
    } catch (e) {
      checks[`resp${p}:exception`] = String(e && e.stack || e).slice(0, 500);
    }
  }
  const ok = Object.values(checks).every((v) => v === true);
  console.log(JSON.stringify({ ok, checks }));
  process.exit(ok ? 0 : 1);
})();
