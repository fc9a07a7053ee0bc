#!/usr/bin/env node
'use strict';
/*
 * Issue 15's multi-node run (driven by tests/tests/redis_nodes.rs): alice on one sipcore node,
 * bob given several server URLs; the Rust test kills bob's node and stops Redis, and tells
 * this script through stdin when it has.
 *
 *   node failover.js --alice-stack jssip --bob-stack sipjs|jssip --alice-url ws://A/ \
 *        --bob-urls ws://B/,ws://C/ [--domain example.com] [--timeout SECS] [--trace]
 *
 * Uses scenario.js's stack adapters (JsSIP and SIP.js in Node over the `ws` package), its
 * wire trace and its steps: one JSON line per step on stdout, "step":"wait" lines asking the
 * test for something; reads commands (one per line) on stdin:
 *   killed   bob's first node has been killed      -> bob fails over by itself, re-registers
 *   go       alice's node knows bob's new binding  -> MESSAGE and calls both ways again
 *   outage   Redis is stopped                      -> WebSockets stay, MESSAGE both ways passes
 * Exits 0 when every step passed, 1 on a failed step, 2 on the global timeout, 3 on bad usage.
 */
const S = require('./scenario.js');

function parseArgs(argv) {
  const o = {
    aliceStack: 'jssip', bobStack: 'sipjs', aliceUrl: null, bobUrls: null, domain: 'example.com',
    timeout: 180, stepTimeout: 10, trace: false, suffix: '',
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) usage(`missing value for ${a}`);
      return argv[++i];
    };
    switch (a) {
      case '--alice-stack': o.aliceStack = val(); break;
      case '--bob-stack': o.bobStack = val(); break;
      case '--alice-url': o.aliceUrl = val(); break;
      case '--bob-urls': o.bobUrls = val().split(','); break;
      case '--domain': o.domain = val(); break;
      case '--timeout': o.timeout = Number(val()); break;
      case '--step-timeout': o.stepTimeout = Number(val()); break;
      case '--trace': o.trace = true; break;
      default: usage(`unknown argument ${a}`);
    }
  }
  if (!o.aliceUrl || !o.bobUrls || o.bobUrls.length < 2) usage('--alice-url and two --bob-urls are required');
  for (const s of [o.aliceStack, o.bobStack]) if (s !== 'jssip' && s !== 'sipjs') usage(`unknown stack ${s}`);
  return o;
}

function usage(msg) {
  process.stderr.write(`error: ${msg}\nusage: node failover.js --alice-stack jssip|sipjs --bob-stack jssip|sipjs ` +
    '--alice-url ws://A/ --bob-urls ws://B/,ws://C/ [--domain D] [--timeout SECS] [--trace]\n');
  process.stdout.write(JSON.stringify({ step: 'usage', ok: false, error: msg }) + '\n');
  process.exit(3);
}

// ---------------------------------------------------------------- commands on stdin
const commands = [];
let stdinClosed = false;
require('readline').createInterface({ input: process.stdin }).on('line', (l) => commands.push(l.trim()))
  .on('close', () => { stdinClosed = true; });

async function command(name) {
  S.out({ step: 'wait', ok: true, for: name });
  for (;;) {
    const i = commands.indexOf(name);
    if (i >= 0) { commands.splice(i, 1); return; }
    if (stdinClosed) throw new Error(`stdin closed before command ${name}`);
    await S.sleep(10);
  }
}

// ---------------------------------------------------------------- steps
const { step, assert, until, expectWire, isReq, isResp, mark, wire, closes, opened } = S;

async function register(u) {
  await step(`${u.name}.register`, async () => {
    const since = mark(u);
    const p = u.register();
    const resp = await expectWire(u, 'in', isResp('REGISTER', (s) => s >= 200), 'final response to REGISTER', since);
    const status = await p;
    assert(resp.status === 200 && status === 200, `REGISTER got ${resp.status} (stack: ${status})`);
    return { status };
  });
}

async function message(label, from, to) {
  await step(`${label}.message.${from.name}_to_${to.name}`, async () => {
    const body = `hello ${to.name} from ${from.name} ${Math.random().toString(36).slice(2, 10)}`;
    const sinceTo = mark(to);
    const status = await from.message(to.uri, body);
    assert(status === 200 || status === 202, `MESSAGE answered ${status}`);
    const got = await expectWire(to, 'in', isReq('MESSAGE', (m) => m.body === body), 'the MESSAGE', sinceTo);
    await until(() => to.messages.find((m) => m.body === body), `${to.name}'s stack reports the MESSAGE`);
    return { status, ruri: got.ruri };
  });
}

// MESSAGE both ways, a call each way (the callee hangs up the first, the caller the second).
async function exchange(label, alice, bob) {
  await message(label, alice, bob);
  await message(label, bob, alice);
  const one = await S.establish(`${label}.call_alice_to_bob`, alice, bob);
  await S.hangup(`${label}.call_alice_to_bob`, bob, alice, one.cc, one.c);
  const two = await S.establish(`${label}.call_bob_to_alice`, bob, alice);
  await S.hangup(`${label}.call_bob_to_alice`, bob, alice, two.c, two.cc);
}

const registersSince = (u, since) => (wire[u.name] || []).slice(since)
  .filter((e) => e.dir === 'out' && e.msg.isRequest && e.msg.method === 'REGISTER').length;

async function main() {
  const o = parseArgs(process.argv.slice(2));
  S.setOpts(o);
  S.installBrowserGlobals();
  const timer = setTimeout(() => {
    S.out({ step: 'global_timeout', ok: false, error: `failover did not finish within ${o.timeout} s` });
    S.dumpWire();
    process.exit(2);
  }, o.timeout * 1000);
  timer.unref();
  const make = (stack) => (stack === 'jssip' ? S.makeJssipUser : S.makeSipjsUser);
  const alice = make(o.aliceStack)('alice', { ...o, url: o.aliceUrl });
  const bob = make(o.bobStack)('bob', { ...o, url: o.bobUrls[0], urls: o.bobUrls });
  S.out({ step: 'start', ok: true, alice: o.aliceStack, bob: o.bobStack, aliceUrl: o.aliceUrl, bobUrls: o.bobUrls,
    versions: S.versions() });
  try {
    for (const u of [alice, bob]) {
      await step(`${u.name}.connect`, async () => { await u.start(); return { url: opened[u.name].slice(-1)[0] }; });
    }
    await step('bob.on_first_server', async () => {
      const url = opened.bob.slice(-1)[0];
      assert(url === o.bobUrls[0], `bob connected to ${url}, not ${o.bobUrls[0]}`);
      return { url };
    });
    for (const u of [alice, bob]) await register(u);
    await exchange('before', alice, bob);

    // bob's node dies: his stack reconnects to the next URL and registers there by itself.
    const sinceKill = mark(bob);
    const openedBefore = opened.bob.length;
    const closesBefore = closes.bob || 0;
    await command('killed');
    await step('bob.failover', async () => {
      await until(() => (closes.bob || 0) > closesBefore, 'bob\'s WebSocket to the killed node closes', 15000);
      await until(() => opened.bob.slice(openedBefore).includes(o.bobUrls[1]),
        `bob's stack opens a WebSocket to ${o.bobUrls[1]}`, 20000);
      const req = await expectWire(bob, 'out', isReq('REGISTER'), 'REGISTER on the new server', sinceKill, 20000);
      const resp = await expectWire(bob, 'in', isResp('REGISTER', 200), '200 to that REGISTER', sinceKill, 20000);
      return { opened: opened.bob.slice(openedBefore), register_cseq: req.cseqNum, status: resp.status };
    });
    await command('go');
    await exchange('after', alice, bob);
    await step('bob.one_registration', async () => {
      const n = registersSince(bob, sinceKill);
      assert(n === 1, `bob sent ${n} REGISTERs since the kill (one re-registration expected)`);
      return { registers: n };
    });

    // Redis is restarted (the test streams MESSAGEs from UDP meanwhile), then stopped:
    // the WebSockets stay and alice and bob still reach each other (lookup from memory).
    const bobCloses = closes.bob || 0;
    await command('outage');
    await step('outage.websockets_stay', async () => {
      assert(!closes.alice, `alice's WebSocket closed ${closes.alice} time(s)`);
      assert((closes.bob || 0) === bobCloses, `bob's WebSocket closed ${(closes.bob || 0) - bobCloses} more time(s)`);
      return { alice_closes: closes.alice || 0, bob_closes: closes.bob || 0 };
    });
    await message('outage', alice, bob);
    await message('outage', bob, alice);
    await step('outage.still_connected', async () => {
      assert(!closes.alice && (closes.bob || 0) === bobCloses, 'a WebSocket closed during the outage');
      assert(registersSince(bob, sinceKill) === 1, 'bob registered again');
      return {};
    });
  } catch (e) {
    S.out({ result: 'fail', ok: false, error: e && e.message ? e.message : String(e) });
    S.log(`FAIL: ${e && e.message}`);
    S.dumpWire();
    process.exit(1);
  }
  S.out({ result: 'pass', ok: true, alice: o.aliceStack, bob: o.bobStack });
  process.exit(0);
}

process.on('unhandledRejection', (e) => {
  S.log(`unhandled rejection: ${e && e.stack || e}`);
});

main();
