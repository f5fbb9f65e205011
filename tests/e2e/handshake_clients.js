// Real Node clients with their own connect handshakes, each doing a few commands, then holding
// their connections open. ioredis 6 speaks RESP3 by default (HELLO 3 at connect, which needs a
// connection of its own); here it is asked for RESP2 (`protocol: 2`), as an application that
// wants to share would configure it; node-redis 5 speaks RESP2.
//
// Usage: node handshake_clients.js PORT COUNT
// Opens COUNT ioredis and COUNT node-redis clients (versions pinned in
// tests/e2e/node/package-lock.json), runs SET/GET/INCR/MGET on each, prints one JSON line
// {"ok": bool, "errors": [...]} when all have answered, then waits for stdin to close.
"use strict";
const path = require("path");
const { createRequire } = require("module");
const req = createRequire(path.join(__dirname, "node", "package.json"));
const IORedis = req("ioredis");
const { createClient } = req("redis");

const port = Number(process.argv[2]);
const count = Number(process.argv[3] || 10);

async function work(c, tag, i, errors) {
  try {
    const key = `hs:${tag}:${i}`;
    await c.set(key, `v${i}`);
    const got = await c.get(key);
    if (got !== `v${i}`) errors.push(`${tag}${i}: GET ${got}`);
    const n = await c.incr(`hs:${tag}:n`);
    if (!(n >= 1)) errors.push(`${tag}${i}: INCR ${n}`);
    const many = tag === "ioredis" ? await c.mget(key, "hs:none") : await c.mGet([key, "hs:none"]);
    if (many[0] !== `v${i}` || many[1] !== null) errors.push(`${tag}${i}: MGET ${many}`);
  } catch (e) {
    errors.push(`${tag}${i}: ${e.message}`);
  }
}

(async () => {
  const errors = [];
  const clients = [];
  for (let i = 0; i < count; i++) {
    clients.push(["ioredis", new IORedis({ host: "127.0.0.1", port, protocol: 2,
                                             maxRetriesPerRequest: 0 })]);
    const r = createClient({ socket: { host: "127.0.0.1", port, reconnectStrategy: false } });
    r.on("error", (e) => errors.push(`node-redis: ${e.message}`));
    await r.connect();
    clients.push(["node-redis", r]);
  }
  await Promise.all(clients.map(([tag, c], i) => work(c, tag, i, errors)));
  console.log(JSON.stringify({ ok: errors.length === 0, errors: errors.slice(0, 20) }));
  process.stdin.resume();
  process.stdin.on("end", async () => {
    for (const [tag, c] of clients) {
      try {
        if (tag === "ioredis") c.disconnect(); else await c.quit();
      } catch (e) { /* closing */ }
    }
    process.exit(0);
  });
})().catch((e) => {
  console.log(JSON.stringify({ ok: false, errors: [String(e && e.stack || e)] }));
  process.exit(1);
});
