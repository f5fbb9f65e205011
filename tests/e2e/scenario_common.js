'use strict';
// Helpers shared by the e2e scenario scripts (bullmq_scenario.js, bull_scenario.js).

function log(...a) {
  process.stderr.write(`[${new Date().toISOString()}] ${a.join(' ')}\n`);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Makes the ioredis a library uses send EVALSHA first (like ioredis 4), EVAL after NOSCRIPT.
function patchEvalshaFirst(req) {
  const scriptModule = req('ioredis/built/Script');
  const Command = req('ioredis/built/Command').default;
  const Original = scriptModule.default;
  if (Original.__evalshaFirst) return;
  class EvalshaFirstScript extends Original {
    constructor(lua, ...rest) {
      super(lua, ...rest);
      const sha = this.sha;
      const needsEval = new WeakSet();
      this.Command = class extends Command {
        toWritable(socket) {
          const origReject = this.reject;
          this.reject = (err) => {
            if (String(err && err.message).includes('NOSCRIPT')) needsEval.add(socket);
            origReject.call(this, err);
          };
          if (needsEval.has(socket)) {
            needsEval.delete(socket);
            this.name = 'eval';
            this.args[0] = lua;
          } else {
            this.name = 'evalsha';
            this.args[0] = sha;
          }
          return super.toWritable(socket);
        }
      };
    }
  }
  EvalshaFirstScript.__evalshaFirst = true;
  scriptModule.default = EvalshaFirstScript;
}

module.exports = { log, sleep, patchEvalshaFirst };
