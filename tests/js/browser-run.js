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
 * Steps: both register; MESSAGE alice -> bob; INVITE alice -> bob answered with real WebRTC
 * offer/answer (fake audio device), both sides established, media path reported; BYE from bob;
 * an unregistered callee answered 404/480; both unregister.
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
if (!URL_WS) {
  process.stderr.write('usage: node browser-run.js --url ws[s]://HOST:PORT [--domain D] [--password PW] [--chromium PATH] [--spki BASE64]\n');
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

// Wait until the page has logged an event matching `pred` (a function source over `e`).
async function waitEvent(page, pred, what, timeout = 10000) {
  try {
    const h = await page.waitForFunction(
      (p) => window.harness && window.harness.events.find(new Function('e', `return (${p})(e)`)),
      pred, { timeout, polling: 50 });
    return await h.jsonValue();
  } catch (e) {
    const evs = await page.evaluate(() => window.harness ? window.harness.events : []);
    throw new Error(`${what}: not seen within ${timeout} ms; events: ${JSON.stringify(evs).slice(0, 1500)}`);
  }
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
    await step('message.alice_to_bob', async () => {
      const body = `hello from a browser ${Math.random().toString(36).slice(2)}`;
      await alice.evaluate(([to, b]) => window.harness.message(to, b), [`sip:bob@${DOMAIN}`, body]);
      const got = await waitEvent(bob, `(e) => e.name === 'message' && e.body === ${JSON.stringify(body)}`, 'bob got the MESSAGE');
      const reply = await waitEvent(alice, "(e) => e.name === 'message_reply'", 'alice got the answer');
      if (reply.status !== 200) throw new Error(`MESSAGE answered ${reply.status}`);
      return { from: got.from };
    });
    await step('call.invite_answer', async () => {
      await alice.evaluate((to) => window.harness.call(to), `sip:bob@${DOMAIN}`);
      const inv = await waitEvent(bob, "(e) => e.name === 'invite'", 'bob got the INVITE');
      await bob.evaluate(() => window.harness.answer());
      await waitEvent(alice, "(e) => e.name === 'session' && e.role === 'caller' && e.state === 'Established'", 'alice established');
      await waitEvent(bob, "(e) => e.name === 'session' && e.role === 'callee' && e.state === 'Established'", 'bob established');
      return { ruri: inv.ruri };
    });
    await step('call.media', async () => {
      // WebRTC between the two pages (ICE host candidates on this machine): reported, the
      // signalling above is what the server is responsible for.
      const pc = await waitEvent(bob, "(e) => e.name === 'pc' && (e.state === 'connected' || e.state === 'failed')", 'bob peer connection', 15000);
      if (pc.state !== 'connected') throw new Error(`peer connection ${pc.state}`);
      return { peer_connection: pc.state };
    });
    await step('call.bye_from_bob', async () => {
      await bob.evaluate(() => window.harness.hangup());
      await waitEvent(alice, "(e) => e.name === 'session' && e.role === 'caller' && e.state === 'Terminated'", 'alice sees the call end');
    });
    await step('unregistered.call_carol', async () => {
      await alice.evaluate((to) => window.harness.call(to), `sip:carol@${DOMAIN}`);
      const r = await waitEvent(alice, "(e) => e.name === 'invite_reply'", 'final answer for carol');
      if (r.status !== 404 && r.status !== 480) throw new Error(`INVITE to carol answered ${r.status}`);
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

setTimeout(() => { out({ result: 'timeout', ok: false }); process.exit(2); }, 90000).unref();
main().catch((e) => { process.stderr.write(String(e && e.stack || e) + '\n'); process.exit(1); });
