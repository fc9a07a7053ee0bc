#!/usr/bin/env node
'use strict';
/*
 * Two SIP.js user agents in a real browser (Debian's chromium, headless, driven by
 * playwright-core) register and call each other through a SIP-over-WebSocket server.
 *
 *   node browser-run.js --url ws://127.0.0.1:PORT [--domain example.com] [--password PW] [--chromium /usr/bin/chromium]
 *   node browser-run.js --url wss://localhost:PORT/ --spki BASE64 [...]
 *
 * With --spki, chromium is launched with --ignore-certificate-errors-spki-list=BASE64 (the
 * base64 SHA-256 of the server certificate's DER SubjectPublicKeyInfo, comma-separated for
 * several): a wss:// server whose certificate has that key is accepted although its CA is not
 * trusted; every other certificate is still verified (no --ignore-certificate-errors). Get it
 * with
 *   openssl x509 -pubkey -noout -in cert.pem | openssl pkey -pubin -outform der \
 *     | openssl dgst -sha256 -binary | base64
 * The page itself stays on http://127.0.0.1 (a wss:// connection from an http page is allowed).
 *
 * Prints one JSON line per step; exits 0 when every step passed, 1 otherwise.
 * Each page records the SIP messages on its WebSocket (page.html wraps WebSocket), so steps are
 * checked both by SIP.js's events and on the wire; a step that delivers a request reports that
 * request's Via headers (`via`) as the receiving page saw them.
 * Steps: both register; MESSAGE alice -> bob and bob -> alice; OPTIONS alice -> bob (answered
 * by bob's page) and to the domain (answered by the server, not forwarded); a call alice -> bob
 * (INVITE, 180, 200, ACK) with real WebRTC offer/answer (fake audio device) whose peer
 * connection must reach `connected`, INFO from either side, BYE from bob; a second call with
 * BYE from alice; a call cancelled by alice while ringing (CANCEL at bob, 200, 487, ACK); an
 * INVITE and a MESSAGE to an unregistered user answered 404/480; both unregister.
 * Weaker than tests/js/scenario.js: no re-INVITE, no fork, SIP.js only (no JsSIP page).
 *
 * --step-ms N: how long one wait within a step may take (default 15000).
 * --hold FILE: once both are registered, wait until FILE exists (step `registered.hold`).
 */
const http = require('http');
const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : def;
};
const URL_WS = opt('--url', null);
const DOMAIN = opt('--domain', 'example.com');
// Both users' password, for a server that authenticates (the pages answer 401/407).
const PASSWORD = opt('--password', null);
const CHROMIUM = opt('--chromium', process.env.CHROMIUM || '/usr/bin/chromium');
const SPKI = opt('--spki', null);
// How long one wait of a step may take (both cores may be busy).
const STEP_MS = Number(opt('--step-ms', 15000));
// With --hold FILE: once both pages are registered, step `registered.hold` waits (up to a
// minute) until FILE exists, so that a test can look at the servers while both are registered.
const HOLD = opt('--hold', null);
if (!URL_WS) {
  process.stderr.write('usage: node browser-run.js --url ws[s]://HOST:PORT [--domain D] [--password PW] [--chromium PATH] [--spki BASE64] [--step-ms N] [--hold FILE]\n');
  process.exit(3);
}

const T0 = Date.now();
const out = (o) => process.stdout.write(JSON.stringify(Object.assign({ t_ms: Date.now() - T0 }, o)) + '\n');

// Static files: the page, and SIP.js's ES modules as npm ships them.
const SIPJS = path.join(__dirname, 'node_modules', 'sip.js', 'lib');
function serve() {
  const server = http.createServer((req, res) => {
    const u = new URL(req.url, 'http://x');
    let file = null;
    if (u.pathname === '/' || u.pathname === '/page.html') file = path.join(__dirname, 'browser', 'page.html');
    else if (u.pathname.startsWith('/sip.js/')) {
      const p = path.normalize(path.join(SIPJS, u.pathname.slice('/sip.js/'.length)));
      if (p.startsWith(SIPJS)) file = p;
    }
    if (!file || !fs.existsSync(file)) { res.writeHead(404); res.end(); return; }
    const type = file.endsWith('.html') ? 'text/html' : 'text/javascript';
    res.writeHead(200, { 'Content-Type': type });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

async function step(name, fn) {
  const t0 = Date.now();
  try {
    const r = await fn();
    out(Object.assign({ step: name, ok: true, ms: Date.now() - t0 }, r || {}));
  } catch (e) {
    out({ step: name, ok: false, ms: Date.now() - t0, error: String(e && e.message || e) });
    throw e;
  }
}

// Where `page`'s event log and wire trace stand now: waitEvent/waitWire with it look after it.
async function mark(page) {
  return page.evaluate(() => ({ e: window.harness.events.length, w: window.wire.length }));
}

// Wait until the page has logged an event matching `pred` (a function source over `e`), after
// `since` (a mark) when given.
async function waitEvent(page, pred, what, timeout = STEP_MS, since = null) {
  const from = since ? since.e : 0;
  try {
    const h = await page.waitForFunction(
      ([p, n]) => window.harness && window.harness.events.slice(n).find(new Function('e', `return (${p})(e)`)),
      [pred, from], { timeout, polling: 50 });
    return await h.jsonValue();
  } catch (e) {
    const evs = await page.evaluate(() => window.harness ? window.harness.events : []);
    throw new Error(`${what}: not seen within ${timeout} ms; events: ${JSON.stringify(evs).slice(0, 1500)}`);
  }
}

// Wait until the page's WebSocket carried a SIP message matching `pred` (over a wire entry,
// see page.html) after `since` (a mark).
async function waitWire(page, pred, what, since, timeout = STEP_MS) {
  try {
    const h = await page.waitForFunction(
      ([p, n]) => window.wire.slice(n).find(new Function('e', `return (${p})(e)`)),
      [pred, since.w], { timeout, polling: 50 });
    return await h.jsonValue();
  } catch (e) {
    const w = await page.evaluate((n) => window.wire.slice(n).map((x) => `${x.dir} ${x.first}`), since.w);
    throw new Error(`${what}: not on the wire within ${timeout} ms; since then: ${JSON.stringify(w).slice(0, 1500)}`);
  }
}

// Wait until the page's session in `role` reached `state` after `since`.
function waitSession(page, role, state, since) {
  return waitEvent(page, `(e) => e.name === 'session' && e.role === '${role}' && e.state === '${state}'`,
    `${role} ${state}`, STEP_MS, since);
}

async function main() {
  const server = await serve();
  const base = `http://127.0.0.1:${server.address().port}/page.html`;
  const launchArgs = ['--no-sandbox', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
    '--disable-features=WebRtcHideLocalIpsWithMdns'];
  // Trust exactly the server certificate's key (chromium honours this list only with a
  // --user-data-dir, which playwright always passes).
  if (SPKI) launchArgs.push(`--ignore-certificate-errors-spki-list=${SPKI}`);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: launchArgs,
  });
  const ctx = await browser.newContext();
  const pages = {};
  let ok = false;
  try {
    for (const user of ['alice', 'bob']) {
      const page = await ctx.newPage();
      page.on('console', (m) => process.stderr.write(`[${user} console] ${m.text()}\n`));
      page.on('pageerror', (e) => process.stderr.write(`[${user} pageerror] ${e}\n`));
      const pw = PASSWORD ? `&password=${encodeURIComponent(PASSWORD)}` : '';
      await page.goto(`${base}?user=${user}&domain=${encodeURIComponent(DOMAIN)}&ws=${encodeURIComponent(URL_WS)}${pw}`);
      await waitEvent(page, "(e) => e.name === 'ready'", `${user} page loaded SIP.js`);
      pages[user] = page;
    }
    const { alice, bob } = pages;
    await step('browser', async () => ({ user_agent: await alice.evaluate(() => window.harness.userAgent), url: URL_WS }));
    for (const [name, page] of Object.entries(pages)) {
      await step(`${name}.register`, async () => {
        await page.evaluate(() => window.harness.start());
        await page.evaluate(() => window.harness.register());
        await waitEvent(page, "(e) => e.name === 'registerer' && e.state === 'Registered'", `${name} registered`);
      });
    }
    if (HOLD) {
      await step('registered.hold', async () => {
        const t0 = Date.now();
        while (!fs.existsSync(HOLD)) {
          if (Date.now() - t0 > 60000) throw new Error(`${HOLD} did not appear within 60 s`);
          await new Promise((r) => setTimeout(r, 50));
        }
      });
    }
    const nameOf = (page) => (page === alice ? 'alice' : 'bob');
    for (const [from, to] of [[alice, bob], [bob, alice]]) {
      await step(`message.${nameOf(from)}_to_${nameOf(to)}`, async () => {
        const body = `hello from a browser ${Math.random().toString(36).slice(2)}`;
        const since = await mark(to);
        await from.evaluate(([t, b]) => window.harness.message(t, b), [`sip:${nameOf(to)}@${DOMAIN}`, body]);
        const got = await waitEvent(to, `(e) => e.name === 'message' && e.body === ${JSON.stringify(body)}`, `${nameOf(to)} got the MESSAGE`);
        const req = await waitWire(to, `(e) => e.dir === 'in' && e.method === 'MESSAGE' && e.body === ${JSON.stringify(body)}`, 'the MESSAGE on the wire', since);
        const reply = await waitEvent(from, `(e) => e.name === 'message_reply' && e.body === ${JSON.stringify(body)}`, `${nameOf(from)} got the answer`);
        if (reply.status !== 200 && reply.status !== 202) throw new Error(`MESSAGE answered ${reply.status}`);
        return { from: got.from, via: req.via };
      });
    }
    await step('options.alice_to_bob', async () => {
      const since = await mark(bob);
      const to = `sip:bob@${DOMAIN}`;
      await alice.evaluate((t) => window.harness.options(t), to);
      const req = await waitWire(bob, "(e) => e.dir === 'in' && e.method === 'OPTIONS'", 'the OPTIONS at bob', since);
      await waitWire(bob, "(e) => e.dir === 'out' && e.status === 200 && e.cseq === 'OPTIONS'", 'bob answers 200', since);
      const r = await waitEvent(alice, `(e) => e.name === 'options_reply' && e.to === ${JSON.stringify(to)}`, 'the answer to OPTIONS');
      if (r.status !== 200) throw new Error(`OPTIONS to bob answered ${r.status}`);
      return { status: r.status, via: req.via };
    });
    await step('options.alice_to_server', async () => {
      const since = await mark(bob);
      const to = `sip:${DOMAIN}`;
      await alice.evaluate((t) => window.harness.options(t), to);
      const r = await waitEvent(alice, `(e) => e.name === 'options_reply' && e.to === ${JSON.stringify(to)}`, 'the answer to OPTIONS');
      if (r.status !== 200) throw new Error(`OPTIONS to ${to} answered ${r.status}`);
      const fwd = await bob.evaluate((n) => window.wire.slice(n).filter((e) => e.method === 'OPTIONS').length, since.w);
      if (fwd) throw new Error('OPTIONS to the domain was forwarded to bob');
      return { status: r.status };
    });
    // A call: INVITE alice -> bob, 180, 200, ACK; returns bob's INVITE.
    const establish = async (label) => {
      const sA = await mark(alice); const sB = await mark(bob);
      await alice.evaluate((to) => window.harness.call(to), `sip:bob@${DOMAIN}`);
      const inv = await waitWire(bob, "(e) => e.dir === 'in' && e.method === 'INVITE'", 'bob got the INVITE', sB);
      await waitEvent(bob, "(e) => e.name === 'invite'", `${label}: bob's page reports the INVITE`, STEP_MS, sB);
      await waitWire(alice, "(e) => e.dir === 'in' && e.status === 180 && e.cseq === 'INVITE'", '180 Ringing', sA);
      await bob.evaluate(() => window.harness.answer());
      await waitWire(alice, "(e) => e.dir === 'in' && e.status === 200 && e.cseq === 'INVITE'", '200 OK to INVITE', sA);
      await waitWire(bob, "(e) => e.dir === 'in' && e.method === 'ACK'", 'the ACK at bob', sB);
      await waitSession(alice, 'caller', 'Established', sA);
      await waitSession(bob, 'callee', 'Established', sB);
      return inv;
    };
    // INFO from `from` in the call, answered 200.
    const info = async (from, to) => {
      const body = `info-${Math.random().toString(36).slice(2)}`;
      const since = await mark(to);
      await from.evaluate((b) => window.harness.info(b), body);
      const req = await waitWire(to, `(e) => e.dir === 'in' && e.method === 'INFO' && e.body === ${JSON.stringify(body)}`, 'the INFO', since);
      await waitEvent(to, `(e) => e.name === 'info' && e.body === ${JSON.stringify(body)}`, 'the page reports the INFO');
      const r = await waitEvent(from, `(e) => e.name === 'info_reply' && e.body === ${JSON.stringify(body)}`, 'the answer to INFO');
      if (r.status !== 200) throw new Error(`INFO answered ${r.status}`);
      return { via: req.via };
    };
    // BYE from `from`, answered 200; both calls end.
    const bye = async (from, to) => {
      const sF = await mark(from); const sT = await mark(to);
      await from.evaluate(() => window.harness.hangup());
      const req = await waitWire(to, "(e) => e.dir === 'in' && e.method === 'BYE'", 'the BYE', sT);
      await waitWire(from, "(e) => e.dir === 'in' && e.status === 200 && e.cseq === 'BYE'", '200 OK to BYE', sF);
      await waitSession(from, from === alice ? 'caller' : 'callee', 'Terminated', sF);
      await waitSession(to, to === alice ? 'caller' : 'callee', 'Terminated', sT);
      return { via: req.via };
    };
    await step('call.invite_answer', async () => {
      const inv = await establish('call');
      return { ruri: inv.first.split(' ')[1], via: inv.via, record_route: inv.rr || null };
    });
    await step('call.media', async () => {
      // WebRTC between the two pages (ICE host candidates on this machine): reported, the
      // signalling above is what the server is responsible for.
      const pc = await waitEvent(bob, "(e) => e.name === 'pc' && (e.state === 'connected' || e.state === 'failed')", 'bob peer connection', 15000);
      if (pc.state !== 'connected') throw new Error(`peer connection ${pc.state}`);
      return { peer_connection: pc.state };
    });
    await step('call.info_from_alice', () => info(alice, bob));
    await step('call.info_from_bob', () => info(bob, alice));
    await step('call.bye_from_bob', () => bye(bob, alice));
    await step('call2.invite_answer', async () => {
      const inv = await establish('call2');
      return { via: inv.via };
    });
    await step('call2.bye_from_alice', () => bye(alice, bob));
    await step('cancel.cancel_from_alice', async () => {
      const sA = await mark(alice); const sB = await mark(bob);
      await alice.evaluate((to) => window.harness.call(to), `sip:bob@${DOMAIN}`);
      const inv = await waitWire(bob, "(e) => e.dir === 'in' && e.method === 'INVITE'", 'bob got the INVITE', sB);
      await waitWire(alice, "(e) => e.dir === 'in' && e.status === 180 && e.cseq === 'INVITE'", '180 Ringing', sA);
      await alice.evaluate(() => window.harness.cancel());
      const cancel = await waitWire(bob, "(e) => e.dir === 'in' && e.method === 'CANCEL'", 'the CANCEL at bob', sB);
      await waitWire(alice, "(e) => e.dir === 'in' && e.status === 200 && e.cseq === 'CANCEL'", '200 OK to CANCEL', sA);
      await waitWire(alice, "(e) => e.dir === 'in' && e.status === 487 && e.cseq === 'INVITE'", '487 Request Terminated', sA);
      await waitWire(alice, "(e) => e.dir === 'out' && e.method === 'ACK'", 'the ACK of the 487', sA);
      await waitSession(bob, 'callee', 'Terminated', sB);
      await waitSession(alice, 'caller', 'Terminated', sA);
      const answered = await bob.evaluate((n) => window.wire.slice(n).some((e) => e.dir === 'out' && e.status === 200 && e.cseq === 'INVITE'), sB.w);
      if (answered) throw new Error('bob answered the cancelled call');
      return { via: inv.via, cancel_via: cancel.via };
    });
    await step('unregistered.call_carol', async () => {
      const sA = await mark(alice);
      await alice.evaluate((to) => window.harness.call(to), `sip:carol@${DOMAIN}`);
      const r = await waitEvent(alice, "(e) => e.name === 'invite_reply'", 'final answer for carol', STEP_MS, sA);
      if (r.status !== 404 && r.status !== 480) throw new Error(`INVITE to carol answered ${r.status}`);
      await waitSession(alice, 'caller', 'Terminated', sA);
      return { status: r.status };
    });
    await step('unregistered.message_carol', async () => {
      const to = `sip:carol@${DOMAIN}`;
      await alice.evaluate((t) => window.harness.message(t, 'hello carol'), to);
      const r = await waitEvent(alice, `(e) => e.name === 'message_reply' && e.to === ${JSON.stringify(to)}`, 'the answer to the MESSAGE');
      if (r.status !== 404 && r.status !== 480) throw new Error(`MESSAGE to carol answered ${r.status}`);
      return { status: r.status };
    });
    for (const [name, page] of Object.entries(pages)) {
      await step(`${name}.unregister`, async () => {
        await page.evaluate(() => window.harness.unregister());
        await waitEvent(page, "(e) => e.name === 'registerer' && e.state === 'Unregistered'", `${name} unregistered`);
        await page.evaluate(() => window.harness.stop());
      });
    }
    ok = true;
  } catch (e) {
    process.stderr.write(`failed: ${e && e.stack || e}\n`);
  } finally {
    await browser.close();
    server.close();
  }
  out({ result: ok ? 'pass' : 'fail', ok });
  process.exit(ok ? 0 : 1);
}

setTimeout(() => { out({ result: 'timeout', ok: false }); process.exit(2); }, 180000).unref();
main().catch((e) => { process.stderr.write(String(e && e.stack || e) + '\n'); process.exit(1); });
