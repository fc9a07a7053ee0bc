#!/usr/bin/env node
'use strict';
/*
 * Drives real third-party SIP stacks (JsSIP and SIP.js, from npm) running in
 * Node against a SIP-over-WebSocket server.
 *
 *   node scenario.js --stack jssip|sipjs|mixed --url ws://127.0.0.1:PORT \
 *        --domain example.com --scenario register|message|options|call|cancel|unregistered|all
 *
 * Prints one JSON line per step on stdout; exits 0 when every step passed,
 * 1 on a failed step, 2 on the global timeout, 3 on bad usage.
 * Diagnostics (and, with --trace, every SIP message on the wire) go to stderr.
 *
 * Verification is done both through the stacks' own events and through a
 * trace of the raw WebSocket frames each user agent sent/received, so the
 * assertions do not depend on how a stack reports things.
 */

// ---------------------------------------------------------------- arguments
function parseArgs(argv) {
  const o = {
    stack: 'jssip', url: null, bobUrl: null, password: null, domain: 'example.com', scenario: 'all',
    timeout: 20, stepTimeout: 5, trace: false, suffix: '', idle: 3, peer: null, peerBye: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) usage(`missing value for ${a}`);
      return argv[++i];
    };
    switch (a) {
      case '--stack': o.stack = val(); break;
      case '--url': o.url = val(); break;
      case '--bob-url': o.bobUrl = val(); break;
      case '--password': o.password = val(); break;
      case '--domain': o.domain = val(); break;
      case '--scenario': o.scenario = val(); break;
      case '--timeout': o.timeout = Number(val()); break;
      case '--step-timeout': o.stepTimeout = Number(val()); break;
      case '--suffix': o.suffix = val(); break;
      case '--idle': o.idle = Number(val()); break;
      case '--peer': o.peer = val(); break;
      case '--peer-bye': o.peerBye = val(); break;
      case '--fork-stack': o.forkStack = val(); break;
      case '--trace': o.trace = true; break;
      case '-h': case '--help': usage(null); break;
      default: usage(`unknown argument ${a}`);
    }
  }
  if (!o.url) usage('--url is required');
  CHALLENGED = !!o.password;
  return o;
}

function usage(msg) {
  const text = [
    'usage: node scenario.js --url ws://127.0.0.1:PORT [--bob-url wss://...] [--stack jssip|sipjs|mixed|STACK,STACK]',
    '       [--domain example.com] [--scenario NAME] [--timeout SECS] [--step-timeout SECS]',
    '       [--suffix STR] [--idle SECS (scenario idle)] [--trace]',
    '       [--password PW (both users answer 401/407 challenges with it)]',
    '       [--peer URI --peer-bye URI (scenario udp: a UAS that waits for the BYE, one that sends it)]',
    'scenarios: ' + Object.keys(SCENARIOS).join(', '),
    'stacks: jssip, sipjs, mixed (alice=jssip, bob=sipjs), or "A,B" for alice,bob',
  ].join('\n');
  if (msg) {
    process.stderr.write(`error: ${msg}\n${text}\n`);
    process.stdout.write(JSON.stringify({ step: 'usage', ok: false, error: msg }) + '\n');
    process.exit(3);
  }
  process.stdout.write(text + '\n');
  process.exit(0);
}

// ---------------------------------------------------------------- output
const T0 = Date.now();
function out(obj) {
  process.stdout.write(JSON.stringify(Object.assign({ t_ms: Date.now() - T0 }, obj)) + '\n');
}
let OPTS = null;
function log(...a) { process.stderr.write(a.join(' ') + '\n'); }

// ---------------------------------------------------------------- fake WebRTC
let sdpCounter = 0;
function fakeSdp(sessId, version) {
  return [
    'v=0',
    `o=- ${sessId} ${version} IN IP4 127.0.0.1`,
    's=-',
    'c=IN IP4 127.0.0.1',
    't=0 0',
    'm=audio 9 RTP/AVP 0 101',
    'a=rtpmap:0 PCMU/8000',
    'a=rtpmap:101 telephone-event/8000',
    'a=sendrecv',
    '',
  ].join('\r\n');
}

// Minimal RTCPeerConnection good enough for JsSIP's offer/answer machinery.
class FakeRTCPeerConnection extends EventTarget {
  constructor() {
    super();
    this._sessId = String(1000000 + (++sdpCounter));
    this._ver = 0;
    this.signalingState = 'stable';
    this.iceGatheringState = 'complete';
    this.iceConnectionState = 'connected';
    this.connectionState = 'connected';
    this.localDescription = null;
    this.remoteDescription = null;
    this._senders = [];
  }
  _desc(type) { return { type, sdp: fakeSdp(this._sessId, ++this._ver) }; }
  createOffer() { return Promise.resolve(this._desc('offer')); }
  createAnswer() { return Promise.resolve(this._desc('answer')); }
  setLocalDescription(d) {
    this.localDescription = d;
    this.signalingState = d.type === 'offer' ? 'have-local-offer' : 'stable';
    return Promise.resolve();
  }
  setRemoteDescription(d) {
    this.remoteDescription = d;
    this.signalingState = d.type === 'offer' ? 'have-remote-offer' : 'stable';
    return Promise.resolve();
  }
  addTrack(track) { const s = { track, replaceTrack: () => Promise.resolve() }; this._senders.push(s); return s; }
  removeTrack() {}
  getSenders() { return this._senders; }
  getReceivers() { return []; }
  getTransceivers() { return []; }
  getLocalStreams() { return []; }
  getRemoteStreams() { return []; }
  addIceCandidate() { return Promise.resolve(); }
  getStats() { return Promise.resolve(new Map()); }
  close() { this.signalingState = 'closed'; }
}
class FakeRTCSessionDescription {
  constructor(init) { this.type = init.type; this.sdp = init.sdp; }
}
function fakeStream() {
  return { getTracks: () => [], getAudioTracks: () => [], getVideoTracks: () => [] };
}

// SessionDescriptionHandler for SIP.js (see api/session-description-handler.d.ts).
class FakeSdh {
  constructor() { this._sessId = String(2000000 + (++sdpCounter)); this._ver = 0; }
  getDescription() {
    return Promise.resolve({ body: fakeSdp(this._sessId, ++this._ver), contentType: 'application/sdp' });
  }
  hasDescription(contentType) { return contentType === 'application/sdp'; }
  setDescription() { return Promise.resolve(); }
  rollbackDescription() { return Promise.resolve(); }
  sendDtmf() { return false; }
  close() {}
}

// ---------------------------------------------------------------- traced WebSocket
const WS = require('ws');
const wire = {}; // user name -> [{dir, t, msg}]
let currentOwner = null;

// WebSocket closes per user agent (scenario idle: a registered client's connection stays).
const closes = {};
// The user agent of each server URL of a user given several (--bob-urls): a stack that fails
// over opens its next WebSocket long after start(), when currentOwner names someone else.
const urlOwners = {};
// The URLs each user agent opened a WebSocket to, in order.
const opened = {};

class TracedWebSocket extends WS {
  constructor(url, protocols) {
    super(url, protocols);
    const owner = urlOwners[String(url)] || currentOwner || 'unknown';
    this._owner = owner;
    if (!wire[owner]) wire[owner] = [];
    (opened[owner] = opened[owner] || []).push(String(url));
    this.on('message', (data, isBinary) => {
      const text = isBinary ? Buffer.from(data).toString('utf8') : data.toString();
      record(owner, 'in', text);
    });
    this.on('close', (code, reason) => {
      closes[owner] = (closes[owner] || 0) + 1;
      if (OPTS && OPTS.trace) log(`[${owner}] websocket closed ${code} ${reason}`);
    });
  }
  send(data, ...rest) {
    const text = typeof data === 'string' ? data : Buffer.from(data).toString('utf8');
    record(this._owner, 'out', text);
    return super.send(data, ...rest);
  }
}

const COMPACT = {
  v: 'via', f: 'from', t: 'to', i: 'call-id', m: 'contact', l: 'content-length',
  c: 'content-type', k: 'supported', s: 'subject', e: 'content-encoding', o: 'event',
  r: 'refer-to', u: 'allow-events', b: 'referred-by', x: 'session-expires', a: 'accept-contact',
};

function parseSip(text) {
  const sep = text.indexOf('\r\n\r\n');
  const head = sep >= 0 ? text.slice(0, sep) : text;
  const body = sep >= 0 ? text.slice(sep + 4) : '';
  const rawLines = head.split(/\r\n/);
  const lines = [];
  for (const l of rawLines) {
    if (/^[ \t]/.test(l) && lines.length) lines[lines.length - 1] += ' ' + l.trim();
    else lines.push(l);
  }
  const first = lines.shift() || '';
  const headers = {};
  for (const l of lines) {
    const k = l.indexOf(':');
    if (k < 0) continue;
    let name = l.slice(0, k).trim().toLowerCase();
    if (COMPACT[name]) name = COMPACT[name];
    (headers[name] = headers[name] || []).push(l.slice(k + 1).trim());
  }
  const m = { first, headers, body, raw: text };
  const h = (n) => (headers[n] || [])[0];
  m.h = h;
  if (first.startsWith('SIP/2.0 ')) {
    m.isResponse = true;
    m.status = parseInt(first.split(' ')[1], 10);
  } else {
    m.isRequest = true;
    const p = first.split(' ');
    m.method = p[0];
    m.ruri = p[1];
  }
  const cseq = (h('cseq') || '').split(/\s+/);
  m.cseqNum = parseInt(cseq[0], 10);
  m.cseqMethod = cseq[1];
  m.callId = h('call-id');
  const tt = /;\s*tag=([^;>\s]+)/i.exec(h('to') || '');
  m.toTag = tt ? tt[1] : null;
  return m;
}

function record(owner, dir, text) {
  if (!text || !text.trim()) return; // CRLF keep-alives
  const msg = parseSip(text);
  wire[owner].push({ dir, t: Date.now() - T0, msg });
  if (OPTS && OPTS.trace) {
    log(`----- [${owner}] ${dir === 'in' ? '<<< received' : '>>> sent'} (${Date.now() - T0} ms)\n${text.replace(/\r\n/g, '\n')}`);
  }
}

function mark(user) { return (wire[user.name] || []).length; }

function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

async function until(fn, desc, timeoutMs) {
  const limit = timeoutMs != null ? timeoutMs : OPTS.stepTimeout * 1000;
  const end = Date.now() + limit;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${limit} ms waiting for: ${desc}`);
    await sleep(10);
  }
}

// Wait for a message on user's wire trace, after index `since`.
function expectWire(user, dir, pred, desc, since, timeoutMs) {
  return until(() => {
    const list = wire[user.name] || [];
    for (let i = since || 0; i < list.length; i++) {
      if (list[i].dir === dir && pred(list[i].msg)) return list[i].msg;
    }
    return null;
  }, `${user.name} ${dir === 'in' ? 'receives' : 'sends'} ${desc}`, timeoutMs);
}
const isReq = (method, extra) => (m) => m.isRequest && m.method === method && (!extra || extra(m));
// With --password, the 401/407 challenges on the wire are the stacks' business (they answer
// them with credentials): the steps look at the final answer after them.
let CHALLENGED = false;
const isChallenge = (m) => CHALLENGED && (m.status === 401 || m.status === 407);
const isResp = (cseqMethod, statusPred, extra) => (m) => m.isResponse && m.cseqMethod === cseqMethod &&
  !isChallenge(m) &&
  (typeof statusPred === 'function' ? statusPred(m.status) : m.status === statusPred) && (!extra || extra(m));

// ---------------------------------------------------------------- generic recorder
function recorder() {
  const r = {
    events: [],
    emit(name, data) { r.events.push(Object.assign({ name }, data || {})); },
    has(name, pred) { return r.events.find((e) => e.name === name && (!pred || pred(e))); },
    wait(names, desc, pred) {
      const ns = Array.isArray(names) ? names : [names];
      return until(() => r.events.find((e) => ns.includes(e.name) && (!pred || pred(e))), desc);
    },
  };
  return r;
}

// ---------------------------------------------------------------- JsSIP adapter
function installBrowserGlobals() {
  if (!global.window) global.window = {};
  global.window.RTCPeerConnection = FakeRTCPeerConnection;
  global.RTCPeerConnection = FakeRTCPeerConnection;
  global.RTCSessionDescription = FakeRTCSessionDescription;
  global.WebSocket = TracedWebSocket;
  try {
    if (!global.navigator) global.navigator = {};
    if (!global.navigator.mediaDevices) {
      global.navigator.mediaDevices = { getUserMedia: () => Promise.resolve(fakeStream()) };
    }
  } catch (e) { /* read-only navigator on newer Node: we always pass mediaStream anyway */ }
}

function jssipCall(session, dir) {
  const c = recorder();
  c.dir = dir;
  c.raw = session;
  session.on('progress', (e) => c.emit('progress', { status: e.response && e.response.status_code }));
  session.on('accepted', () => c.emit('accepted'));
  session.on('confirmed', () => c.emit('confirmed'));
  session.on('ended', (e) => c.emit('ended', { originator: e.originator, cause: e.cause }));
  session.on('failed', (e) => c.emit('failed', {
    originator: e.originator, cause: e.cause, status: e.message && e.message.status_code,
  }));
  session.on('newInfo', (e) => {
    if (e.originator === 'remote') c.emit('info', { contentType: e.info.contentType, body: e.info.body });
  });
  session.on('reinvite', () => c.emit('reinvite'));
  c.answer = () => session.answer({ mediaStream: fakeStream(), pcConfig: { iceServers: [] } });
  c.info = (ct, body) => session.sendInfo(ct, body);
  c.reinvite = () => new Promise((resolve, reject) => {
    const ok = session.renegotiate({}, () => resolve());
    if (!ok) reject(new Error('JsSIP renegotiate() refused'));
  });
  c.bye = () => session.terminate();
  c.cancel = () => session.terminate();
  c.isEnded = () => !!(c.has('ended') || c.has('failed'));
  return c;
}

function makeJssipUser(name, o) {
  const JsSIP = require('jssip');
  const uri = `sip:${o.aorUser || name}@${o.domain}`;
  // Several server URLs (o.urls): JsSIP's own failover. It connects to the socket of the
  // highest weight (the first URL), marks a socket whose connection dropped as failed and
  // reconnects to the next after connection_recovery_min/max_interval seconds (1-2 here),
  // then re-registers by itself when ua.register() was called (UA onTransportConnect).
  const urls = o.urls || [o.url];
  for (const url of (urls.length > 1 ? urls : [])) urlOwners[url] = name;
  const sockets = urls.map((url, i) => ({ socket: new JsSIP.WebSocketInterface(url), weight: urls.length - i }));
  const ua = new JsSIP.UA({
    sockets,
    uri,
    register: false,
    register_expires: 600,
    session_timers: false,
    user_agent: 'JsSIP-harness',
    no_answer_timeout: 60,
    connection_recovery_min_interval: urls.length > 1 ? 1 : 2,
    connection_recovery_max_interval: urls.length > 1 ? 2 : 30,
    ...(o.password ? { password: o.password } : {}),
  });
  const u = { name, stack: 'jssip', uri, calls: [], messages: [], ua, connected: 0 };
  ua.on('connected', () => { u.connected += 1; });
  ua.on('newMessage', (e) => {
    if (e.originator === 'remote') {
      u.messages.push({ from: String(e.request.from.uri), body: e.request.body });
    }
  });
  ua.on('newRTCSession', (e) => {
    if (e.originator === 'remote') u.calls.push(jssipCall(e.session, 'in'));
  });
  u.start = () => new Promise((resolve, reject) => {
    currentOwner = name;
    const onC = () => { ua.removeListener('disconnected', onD); resolve(); };
    const onD = (e) => {
      ua.removeListener('connected', onC);
      reject(new Error(`JsSIP could not connect to ${o.url}: ${e && e.reason || 'disconnected'}`));
    };
    ua.once('connected', onC);
    ua.once('disconnected', onD);
    ua.start();
  });
  const regResult = (okEv) => new Promise((resolve) => {
    const done = (e) => {
      ua.removeListener(okEv, done);
      ua.removeListener('registrationFailed', done);
      resolve(e && e.response ? e.response.status_code : (e && e.cause) || null);
    };
    ua.on(okEv, done);
    ua.on('registrationFailed', done);
  });
  u.register = () => { const p = regResult('registered'); ua.register(); return p; };
  u.unregister = () => { const p = regResult('unregistered'); ua.unregister(); return p; };
  const handlers = (resolve) => ({
    succeeded: (e) => resolve(e.response.status_code),
    failed: (e) => resolve(e.response ? e.response.status_code : e.cause),
  });
  u.message = (target, body) => new Promise((resolve) => {
    ua.sendMessage(target, body, { contentType: 'text/plain', eventHandlers: handlers(resolve) });
  });
  u.options = (target) => new Promise((resolve) => {
    // JsSIP's normalizeTarget() turns a user-less string "sip:host" into
    // "sip:host@host": pass a parsed URI object instead.
    const t = typeof target === 'string' ? JsSIP.URI.parse(target) : target;
    ua.sendOptions(t, null, { eventHandlers: handlers(resolve) });
  });
  u.call = (target) => {
    const s = ua.call(target, {
      mediaStream: fakeStream(),
      pcConfig: { iceServers: [] },
      mediaConstraints: { audio: true, video: false },
    });
    return jssipCall(s, 'out');
  };
  u.stop = () => { try { ua.stop(); } catch (e) { /* ignore */ } };
  return u;
}

// ---------------------------------------------------------------- SIP.js adapter
function sipjsCall(session, dir, SIP) {
  const c = recorder();
  c.dir = dir;
  c.raw = session;
  session.stateChange.addListener((st) => {
    if (st === SIP.SessionState.Established) c.emit('confirmed');
    if (st === SIP.SessionState.Terminated) c.emit('ended');
  });
  session.delegate = {
    onInfo: (info) => {
      c.emit('info', { contentType: info.request.getHeader('content-type'), body: info.request.body });
      info.accept();
    },
    onInvite: (req, resp, statusCode) => c.emit('reinvite', { status: statusCode }),
  };
  if (dir === 'in') {
    session.delegate.onCancel = () => c.emit('failed', { originator: 'remote', cause: 'Canceled' });
  }
  c.answer = () => session.accept().catch((e) => c.emit('error', { error: String(e) }));
  c.info = (ct, body) => session.info({
    requestOptions: { body: { contentDisposition: 'render', contentType: ct, content: body } },
  }).catch((e) => c.emit('error', { error: String(e) }));
  c.reinvite = () => new Promise((resolve, reject) => {
    session.invite({
      requestDelegate: {
        onAccept: () => resolve(),
        onReject: (r) => reject(new Error(`re-INVITE rejected ${r.message.statusCode}`)),
      },
    }).catch(reject);
  });
  c.bye = () => session.bye().catch((e) => c.emit('error', { error: String(e) }));
  c.cancel = () => session.cancel().catch((e) => c.emit('error', { error: String(e) }));
  c.isEnded = () => !!(c.has('ended') || c.has('failed'));
  return c;
}

// SIP.js 0.21's WebSocket transport takes one `server` (its deprecated `wsServers` array is cut
// to the first URL) and never reconnects by itself: a SIP.js application that has several
// servers fails over itself. This one does it through SIP.js's supported extension point, the
// `transportConstructor` option: the stock transport with `server` naming the current URL of
// the list, moved to the next one when a connection is lost; the UserAgent delegate's
// onDisconnect reconnects (`userAgent.reconnect()`, as SIP.js's own SessionManager does) and
// onConnect registers again when the application had registered (as SessionManager does).
function failoverTransport(SIP, urls) {
  return class FailoverTransport extends SIP.Web.Transport {
    constructor(logger, options) {
      super(logger, Object.assign({}, options, { server: urls[0] }));
      this.urlIndex = 0;
    }
    get server() { return urls[this.urlIndex]; }
    nextServer() { this.urlIndex = (this.urlIndex + 1) % urls.length; }
  };
}

function makeSipjsUser(name, o) {
  const SIP = require('sip.js');
  const uri = `sip:${o.aorUser || name}@${o.domain}`;
  const u = { name, stack: 'sipjs', uri, calls: [], messages: [], connected: 0 };
  const urls = o.urls || [o.url];
  for (const url of (urls.length > 1 ? urls : [])) urlOwners[url] = name;
  let registerRequested = false;
  let registerer = null;
  const reconnect = (attempt) => {
    if (attempt > 20) { log(`[${name}] gave up reconnecting`); return; }
    setTimeout(() => {
      ua.reconnect().catch((e) => {
        log(`[${name}] reconnection ${attempt} to ${ua.transport.server} failed: ${e && e.message}`);
        ua.transport.nextServer();
        reconnect(attempt + 1);
      });
    }, attempt === 1 ? 0 : 1000);
  };
  const ua = new SIP.UserAgent({
    uri: SIP.UserAgent.makeURI(uri),
    transportOptions: { server: urls[0], connectionTimeout: 5 },
    ...(urls.length > 1 ? { transportConstructor: failoverTransport(SIP, urls) } : {}),
    userAgentString: 'SIP.js-harness',
    noAnswerTimeout: 60,
    ...(o.password ? { authorizationUsername: o.aorUser || name, authorizationPassword: o.password } : {}),
    logBuiltinEnabled: false,
    logLevel: o.trace ? 'log' : 'warn',
    logConnector: (level, category, label, content) => {
      if (o.trace || level === 'error') log(`[${name} sip.js ${level}] ${category}: ${content}`);
    },
    sessionDescriptionHandlerFactory: () => new FakeSdh(),
    delegate: {
      onInvite: (invitation) => {
        const c = sipjsCall(invitation, 'in', SIP);
        u.calls.push(c);
        // SIP.js sends 180 Ringing itself (sendInitialProvisionalResponse,
        // default true) before calling onInvite; only ring when it did not.
        if (!invitation.autoSendAnInitialProvisionalResponse) {
          invitation.progress().catch((e) => c.emit('error', { error: String(e) }));
        }
      },
      onMessage: (message) => {
        u.messages.push({ from: String(message.request.from.uri), body: message.request.body });
        message.accept();
      },
      onConnect: () => {
        u.connected += 1;
        if (urls.length > 1 && registerRequested && u.connected > 1) {
          registerer.register().catch((e) => log(`[${name}] re-REGISTER failed: ${e && e.message}`));
        }
      },
      onDisconnect: (error) => {
        // error: the connection was lost (not a stop()): fail over to the next server.
        if (urls.length > 1 && error) {
          ua.transport.nextServer();
          reconnect(1);
        }
      },
    },
  });
  u.ua = ua;
  u.start = () => { currentOwner = name; return ua.start(); };
  u.register = () => new Promise((resolve, reject) => {
    registerRequested = true;
    registerer = registerer || new SIP.Registerer(ua, { expires: 600 });
    registerer.register({
      requestDelegate: {
        onAccept: (r) => resolve(r.message.statusCode),
        onReject: (r) => resolve(r.message.statusCode),
      },
    }).catch(reject);
  });
  u.unregister = () => new Promise((resolve, reject) => {
    registerRequested = false;
    if (!registerer) return resolve(null);
    registerer.unregister({
      requestDelegate: {
        onAccept: (r) => resolve(r.message.statusCode),
        onReject: (r) => resolve(r.message.statusCode),
      },
    }).catch(reject);
  });
  const target = (t) => {
    const x = SIP.UserAgent.makeURI(t);
    if (!x) throw new Error(`bad target URI ${t}`);
    return x;
  };
  u.message = (t, body) => new Promise((resolve, reject) => {
    new SIP.Messager(ua, target(t), body, 'text/plain').message({
      requestDelegate: {
        onAccept: (r) => resolve(r.message.statusCode),
        onReject: (r) => resolve(r.message.statusCode),
      },
    }).catch(reject);
  });
  u.options = (t) => new Promise((resolve) => {
    const core = ua.userAgentCore;
    const turi = target(t);
    const req = core.makeOutgoingRequestMessage('OPTIONS', turi, ua.configuration.uri, turi, {});
    core.request(req, {
      onAccept: (r) => resolve(r.message.statusCode),
      onReject: (r) => resolve(r.message.statusCode),
    });
  });
  u.call = (t) => {
    const inviter = new SIP.Inviter(ua, target(t));
    const c = sipjsCall(inviter, 'out', SIP);
    inviter.invite({
      requestDelegate: {
        onProgress: (r) => c.emit('progress', { status: r.message.statusCode }),
        onAccept: () => c.emit('accepted'),
        onReject: (r) => c.emit('failed', { originator: 'remote', status: r.message.statusCode }),
      },
    }).catch((e) => c.emit('error', { error: String(e) }));
    return c;
  };
  u.stop = () => { ua.stop().catch(() => {}); };
  return u;
}

// ---------------------------------------------------------------- steps
async function step(name, fn) {
  const t0 = Date.now();
  try {
    const r = await fn();
    out(Object.assign({ step: name, ok: true, ms: Date.now() - t0 }, r && typeof r === 'object' ? r : {}));
    return r;
  } catch (e) {
    out({ step: name, ok: false, ms: Date.now() - t0, error: e && e.message ? e.message : String(e) });
    throw e;
  }
}

function assert(cond, msg) { if (!cond) throw new Error(msg); }

function contactUri(value) {
  // "<sip:x@y.invalid;transport=ws>;expires=600" or "sip:x@y" -> "x@y.invalid"
  const v = value || '';
  const m = /<([^>]*)>/.exec(v);
  const uri = (m ? m[1] : v.split(';')[0]).trim();
  const um = /^sips?:([^;?>]+)/i.exec(uri);
  return um ? um[1].toLowerCase() : uri.toLowerCase();
}
function splitContacts(values) {
  const out2 = [];
  for (const v of values || []) {
    // split on commas outside <> and quotes
    let depth = 0; let q = false; let cur = '';
    for (const ch of v) {
      if (ch === '"') q = !q;
      if (!q && ch === '<') depth++;
      if (!q && ch === '>') depth--;
      if (ch === ',' && !q && depth === 0) { out2.push(cur.trim()); cur = ''; } else cur += ch;
    }
    if (cur.trim()) out2.push(cur.trim());
  }
  return out2;
}

const ctx = {};

const users = () => [ctx.alice, ctx.bob, ctx.bob2].filter(Boolean);

async function setup(o) {
  for (const u of users()) {
    await step(`${u.name}.connect`, async () => { await u.start(); return { stack: u.stack, url: (u === ctx.bob && o.bobUrl) || o.url }; });
  }
  for (const u of users()) {
    await step(`${u.name}.register`, async () => {
      const since = mark(u);
      const p = u.register();
      const req = await expectWire(u, 'out', isReq('REGISTER'), 'REGISTER', since);
      const resp = await expectWire(u, 'in', isResp('REGISTER', (s) => s >= 200), 'final response to REGISTER', since);
      const status = await p;
      assert(resp.status === 200, `REGISTER got ${resp.status} ${resp.first}`);
      assert(status === 200, `stack reported REGISTER status ${status}`);
      const mine = splitContacts(req.headers.contact);
      assert(mine.length === 1, `REGISTER carried ${mine.length} Contacts`);
      const back = splitContacts(resp.headers.contact);
      const own = contactUri(mine[0]);
      const found = back.find((c) => contactUri(c) === own);
      assert(found, `200 OK to REGISTER does not list own contact ${own}; got ${JSON.stringify(back)}`);
      u.contact = mine[0];
      return { status, contact: mine[0], returned_contact: found, path: req.h('path') || null,
        supported: req.h('supported') || null };
    });
  }
}

async function teardown() {
  for (const u of users()) {
    if (!u.contact) continue;
    await step(`${u.name}.unregister`, async () => {
      const status = await Promise.race([u.unregister(), sleep(OPTS.stepTimeout * 1000).then(() => 'timeout')]);
      assert(status === 200, `un-REGISTER got ${status}`);
      return { status };
    });
  }
  for (const u of users()) u.stop();
}

const aor = (name) => `sip:${name}@${OPTS.domain}`;
const randTag = () => Math.random().toString(36).slice(2, 10);

async function scMessage() {
  const { alice, bob } = ctx;
  for (const [from, to] of [[alice, bob], [bob, alice]]) {
    await step(`message.${from.name}_to_${to.name}`, async () => {
      const body = `hello ${to.name} from ${from.name} ${randTag()}`;
      const sinceTo = mark(to);
      const status = await from.message(to.uri, body);
      assert(status === 200 || status === 202, `MESSAGE answered ${status}`);
      const got = await expectWire(to, 'in', isReq('MESSAGE', (m) => m.body === body), 'the MESSAGE', sinceTo);
      await until(() => to.messages.find((m) => m.body === body), `${to.name}'s stack reports the MESSAGE`);
      return { status, ruri: got.ruri };
    });
  }
}

async function scOptions() {
  const { alice, bob } = ctx;
  await step('options.alice_to_bob', async () => {
    const sinceBob = mark(bob);
    const status = await alice.options(bob.uri);
    const got = await expectWire(bob, 'in', isReq('OPTIONS'), 'the OPTIONS', sinceBob);
    assert(status === 200, `OPTIONS to ${bob.uri} answered ${status}`);
    return { status, ruri: got.ruri };
  });
  await step('options.alice_to_server', async () => {
    const sinceBob = mark(bob);
    const status = await alice.options(`sip:${OPTS.domain}`);
    assert(status === 200, `OPTIONS to sip:${OPTS.domain} answered ${status}`);
    assert(!(wire[bob.name] || []).slice(sinceBob).find((e) => e.msg.method === 'OPTIONS'),
      'OPTIONS to the domain was forwarded to bob');
    return { status };
  });
}

// Set up a call caller -> callee up to confirmed. Returns {c, cc}.
async function establish(label, caller, callee) {
  let c; let cc;
  const sinceCaller = mark(caller);
  const sinceCallee = mark(callee);
  await step(`${label}.invite_and_ring`, async () => {
    const n = callee.calls.length;
    c = caller.call(callee.uri);
    const inv = await expectWire(callee, 'in', isReq('INVITE', (m) => !m.toTag), 'initial INVITE', sinceCallee);
    cc = await until(() => callee.calls[n], `${callee.name}'s stack reports the incoming call`);
    await expectWire(caller, 'in', isResp('INVITE', 180), '180 Ringing', sinceCaller);
    await c.wait('progress', `${caller.name}'s stack reports progress`);
    return { ruri: inv.ruri, record_route: inv.headers['record-route'] || null };
  });
  await step(`${label}.answer_and_ack`, async () => {
    cc.answer();
    const ok = await expectWire(caller, 'in', isResp('INVITE', 200), '200 OK to INVITE', sinceCaller);
    assert(/application\/sdp/i.test(ok.h('content-type') || ''), '200 OK to INVITE has no SDP');
    await expectWire(caller, 'out', isReq('ACK'), 'ACK', sinceCaller);
    await expectWire(callee, 'in', isReq('ACK'), 'ACK', sinceCallee);
    await c.wait(['confirmed'], `${caller.name}'s call is confirmed`);
    await cc.wait(['confirmed'], `${callee.name}'s call is confirmed`);
    return { contact: ok.h('contact'), record_route: ok.headers['record-route'] || null };
  });
  return { c, cc };
}

async function hangup(label, byeFrom, byeTo, callFrom, callTo) {
  await step(`${label}.bye_from_${byeFrom.name}`, async () => {
    const sF = mark(byeFrom); const sT = mark(byeTo);
    callFrom.bye();
    const bye = await expectWire(byeTo, 'in', isReq('BYE'), 'BYE', sT);
    await expectWire(byeFrom, 'in', isResp('BYE', 200), '200 OK to BYE', sF);
    await until(() => callFrom.isEnded(), `${byeFrom.name}'s call ends`);
    await until(() => callTo.isEnded(), `${byeTo.name}'s call ends`);
    return { ruri: bye.ruri };
  });
}

async function scCall() {
  const { alice, bob } = ctx;
  // First call: INFO from alice, re-INVITE from bob, BYE from bob.
  const { c, cc } = await establish('call1', alice, bob);
  await step('call1.info_from_alice', async () => {
    const sA = mark(alice); const sB = mark(bob);
    const body = `info-${randTag()}`;
    c.info('application/x-harness', body);
    await expectWire(bob, 'in', isReq('INFO', (m) => m.body === body), 'INFO', sB);
    await expectWire(alice, 'in', isResp('INFO', 200), '200 OK to INFO', sA);
    const ev = await cc.wait('info', `bob's stack reports the INFO`, (e) => e.body === body);
    return { content_type: ev.contentType };
  });
  await step('call1.reinvite_from_bob', async () => {
    const sA = mark(alice); const sB = mark(bob);
    const p = cc.reinvite();
    const re = await expectWire(alice, 'in', isReq('INVITE', (m) => !!m.toTag), 're-INVITE', sA);
    await expectWire(bob, 'in', isResp('INVITE', 200), '200 OK to re-INVITE', sB);
    await p;
    await expectWire(alice, 'in', isReq('ACK'), 'ACK for re-INVITE', sA);
    return { ruri: re.ruri };
  });
  await hangup('call1', bob, alice, cc, c);
  // Second call: BYE from alice.
  const second = await establish('call2', alice, bob);
  await hangup('call2', alice, bob, second.c, second.cc);
}

async function scCancel() {
  const { alice, bob } = ctx;
  const sA = mark(alice); const sB = mark(bob);
  const n = bob.calls.length;
  let c; let cc;
  await step('cancel.invite_and_ring', async () => {
    c = alice.call(bob.uri);
    await expectWire(bob, 'in', isReq('INVITE', (m) => !m.toTag), 'initial INVITE', sB);
    cc = await until(() => bob.calls[n], `bob's stack reports the incoming call`);
    await expectWire(alice, 'in', isResp('INVITE', 180), '180 Ringing', sA);
  });
  await step('cancel.cancel_from_alice', async () => {
    c.cancel();
    await expectWire(alice, 'out', isReq('CANCEL'), 'CANCEL', sA);
    await expectWire(bob, 'in', isReq('CANCEL'), 'CANCEL', sB);
    await expectWire(alice, 'in', isResp('CANCEL', 200), '200 OK to CANCEL', sA);
    const r487 = await expectWire(alice, 'in', isResp('INVITE', 487), '487 Request Terminated', sA);
    await expectWire(alice, 'out', isReq('ACK', (m) => m.cseqNum === r487.cseqNum), 'ACK for 487', sA);
    await until(() => cc.isEnded(), `bob's stack sees the call cancelled`);
    await until(() => c.isEnded(), `alice's call ends`);
    const bobEv = cc.has('failed') || cc.has('ended');
    return { bob_event: bobEv };
  });
}

// Forking (RFC 3261 §16.6, §16.7): bob is registered from two user agents (bob and bob2,
// --fork-stack), alice calls bob: both ring; bob answers, alice gets that 200 only; bob2 gets a
// CANCEL from the proxy and answers 487 (its call ends without being answered); then BYE.
async function scFork() {
  const { alice, bob, bob2 } = ctx;
  const sA = mark(alice); const sB = mark(bob); const sB2 = mark(bob2);
  const n = bob.calls.length; const n2 = bob2.calls.length;
  let c; let cc; let cc2;
  await step('fork.both_ring', async () => {
    c = alice.call(bob.uri);
    const i1 = await expectWire(bob, 'in', isReq('INVITE', (m) => !m.toTag), 'initial INVITE', sB);
    const i2 = await expectWire(bob2, 'in', isReq('INVITE', (m) => !m.toTag), 'initial INVITE', sB2);
    cc = await until(() => bob.calls[n], `bob's stack reports the incoming call`);
    cc2 = await until(() => bob2.calls[n2], `bob2's stack reports the incoming call`);
    await expectWire(bob, 'out', isResp('INVITE', 180), '180 Ringing', sB);
    await expectWire(bob2, 'out', isResp('INVITE', 180), '180 Ringing', sB2);
    await expectWire(alice, 'in', isResp('INVITE', 180), '180 Ringing', sA);
    assert(i1.h('call-id') === i2.h('call-id'), 'the two INVITEs are not one call');
    const b1 = (i1.headers.via || [])[0]; const b2 = (i2.headers.via || [])[0];
    assert(b1 !== b2, `both branches carry the same top Via ${b1}`);
    return { ruri_bob: i1.ruri, ruri_bob2: i2.ruri };
  });
  await step('fork.first_answer_wins', async () => {
    cc.answer();
    const ok = await expectWire(alice, 'in', isResp('INVITE', 200), '200 OK to INVITE', sA);
    await expectWire(alice, 'out', isReq('ACK'), 'ACK', sA);
    await expectWire(bob, 'in', isReq('ACK'), 'ACK', sB);
    await expectWire(bob2, 'in', isReq('CANCEL'), 'CANCEL for the losing branch', sB2);
    await expectWire(bob2, 'out', isResp('INVITE', 487), '487 Request Terminated', sB2);
    await expectWire(bob2, 'in', isReq('ACK'), 'ACK for the 487 (hop by hop)', sB2);
    await until(() => cc2.isEnded(), `bob2's stack sees the call cancelled`);
    await c.wait(['confirmed'], `alice's call is confirmed`);
    await cc.wait(['confirmed'], `bob's call is confirmed`);
    const oks = (wire[alice.name] || []).slice(sA).filter((e) => e.dir === 'in' && e.msg.isResponse &&
      e.msg.cseqMethod === 'INVITE' && e.msg.status === 200);
    const finals = (wire[alice.name] || []).slice(sA).filter((e) => e.dir === 'in' && e.msg.isResponse &&
      e.msg.cseqMethod === 'INVITE' && e.msg.status >= 300 && !isChallenge(e.msg));
    assert(finals.length === 0, `alice got a final error ${finals.map((e) => e.msg.status)}`);
    assert(!cc2.has('accepted') && !cc2.has('confirmed'), 'bob2 was connected');
    return { contact: ok.h('contact'), oks: oks.length };
  });
  await hangup('fork', alice, bob, c, cc);
}

async function scUnregistered() {
  const { alice } = ctx;
  const carol = aor(`carol${OPTS.suffix}`);
  await step('unregistered.call_carol', async () => {
    const sA = mark(alice);
    const t0 = Date.now();
    const c = alice.call(carol);
    const r = await expectWire(alice, 'in', isResp('INVITE', (s) => s >= 300), 'final response to INVITE', sA);
    assert(r.status === 404 || r.status === 480, `INVITE to unregistered ${carol} got ${r.first}`);
    await until(() => c.isEnded(), `alice's call fails`);
    return { status: r.status, response_ms: Date.now() - t0 };
  });
  await step('unregistered.message_carol', async () => {
    const t0 = Date.now();
    const status = await alice.message(carol, 'hello carol');
    assert(status === 404 || status === 480, `MESSAGE to unregistered ${carol} got ${status}`);
    return { status, response_ms: Date.now() - t0 };
  });
}

// Both registered, then idle (no SIP; SIP.js and JsSIP send at most CRLF keep-alives) for
// longer than the server's ws_connection_lifetime: their connections stay open (the registrar
// keeps a registered flow, RFC 5626 §4.4) and they still reach each other.
async function scIdle() {
  const { alice, bob } = ctx;
  await step('idle.wait', async () => {
    await sleep(OPTS.idle * 1000);
    const lost = [alice, bob].filter((u) => closes[u.name]).map((u) => u.name);
    assert(lost.length === 0, `connection closed while idle: ${lost.join(', ')}`);
    return { idle_s: OPTS.idle };
  });
}

const rrOf = (m) => [].concat(...(m.headers['record-route'] || []).map((v) => splitContacts([v])));

// bob answers the next call, which comes from UDP (within twice the step timeout): it must carry
// two Record-Route values (ws on top, then udp); then bob hangs up (hangUp) or waits for the
// caller's BYE.
async function incoming(label, hangUp) {
  const { bob } = ctx;
  const sB = mark(bob);
  const n = bob.calls.length;
  const inv = await expectWire(bob, 'in', isReq('INVITE', (m) => !m.toTag), 'INVITE from UDP', sB,
    OPTS.stepTimeout * 2000);
  const cc = await until(() => bob.calls[n], `bob's stack reports the incoming call`);
  cc.answer();
  await expectWire(bob, 'in', isReq('ACK'), 'ACK from the UDP caller', sB);
  await cc.wait(['confirmed'], `${label}: bob's call is confirmed`);
  const rr = rrOf(inv);
  assert(rr.length === 2 && /transport=ws/i.test(rr[0]) && /transport=udp/i.test(rr[1]),
    `${label}: expected two Record-Route values (ws, then udp), got ${JSON.stringify(rr)}`);
  // The UDP caller may hang up before bob's stack reports the call confirmed: from sB.
  if (hangUp) {
    cc.bye();
    await expectWire(bob, 'in', isResp('BYE', 200), '200 OK to BYE', sB);
  } else {
    await expectWire(bob, 'in', isReq('BYE'), 'BYE from the UDP caller', sB);
    await expectWire(bob, 'out', isResp('BYE', 200), '200 OK to the BYE', sB);
  }
  await until(() => cc.isEnded(), `bob's call ends`);
  return { record_route: rr };
}

// Calls across transports with a UDP peer (SIPp, started by the Rust test): alice calls
// --peer and hangs up, then calls --peer-bye, which hangs up; then bob, announced ready
// (step udp_in.ready), is called twice from UDP: the caller hangs up the first call, bob the
// second. Every in-dialog request crosses the proxy's double Record-Route (RFC 5658) both ways.
async function scUdp() {
  const { alice, bob } = ctx;
  assert(OPTS.peer && OPTS.peerBye, 'scenario udp needs --peer and --peer-bye');
  const dial = async (label, target) => {
    const sA = mark(alice);
    const c = alice.call(target);
    const ok = await expectWire(alice, 'in', isResp('INVITE', 200), '200 OK to INVITE', sA);
    await expectWire(alice, 'out', isReq('ACK'), 'ACK', sA);
    await c.wait(['confirmed'], `${label}: alice's call is confirmed`);
    const rr = rrOf(ok);
    assert(rr.length === 2 && /transport=udp/i.test(rr[0]) && /transport=ws/i.test(rr[1]),
      `${label}: expected two Record-Route values (udp, then ws), got ${JSON.stringify(rr)}`);
    return { c, rr };
  };
  await step('udp_out.alice_hangs_up', async () => {
    const { c, rr } = await dial('udp_out.alice_hangs_up', OPTS.peer);
    const sA = mark(alice);
    c.bye();
    const bye = await expectWire(alice, 'out', isReq('BYE'), 'BYE', sA);
    await expectWire(alice, 'in', isResp('BYE', 200), '200 OK to BYE', sA);
    await until(() => c.isEnded(), `alice's call ends`);
    return { record_route: rr, route: bye.headers.route || null };
  });
  await step('udp_out.peer_hangs_up', async () => {
    const sA = mark(alice);
    const { c, rr } = await dial('udp_out.peer_hangs_up', OPTS.peerBye);
    const bye = await expectWire(alice, 'in', isReq('BYE'), 'BYE from the UDP peer', sA);
    await expectWire(alice, 'out', isResp('BYE', 200), '200 OK to the BYE', sA);
    await until(() => c.isEnded(), `alice's call ends`);
    return { record_route: rr, ruri: bye.ruri };
  });
  await step('udp_in.ready', async () => ({ bob: bob.uri }));
  await step('udp_in.caller_hangs_up', () => incoming('udp_in.caller_hangs_up', false));
  await step('udp_in.bob_hangs_up', () => incoming('udp_in.bob_hangs_up', true));
}

// A phone over UDP (baresip, started by the Rust test once it reads step answer.ready) calls
// bob, who answers and hangs up.
async function scAnswer() {
  await step('answer.ready', async () => ({ bob: ctx.bob.uri }));
  await step('answer.bob_hangs_up', () => incoming('answer.bob_hangs_up', true));
}

const SCENARIOS = {
  register: [],
  message: [scMessage],
  options: [scOptions],
  call: [scCall],
  cancel: [scCancel],
  unregistered: [scUnregistered],
  fork: [scFork],
  idle: [scIdle, scMessage],
  udp: [scUdp],
  answer: [scAnswer],
  all: [scMessage, scOptions, scCall, scCancel, scUnregistered],
};

function dumpWire() {
  for (const [who, list] of Object.entries(wire)) {
    const tail = list.slice(-12).map((e) => `${e.t}ms ${e.dir === 'in' ? '<<' : '>>'} ${e.msg.first}` +
      (e.msg.isResponse ? ` (${e.msg.cseqMethod})` : ''));
    log(`--- last messages on ${who}'s WebSocket:\n  ${tail.join('\n  ')}`);
  }
}

async function main() {
  OPTS = parseArgs(process.argv.slice(2));
  const o = OPTS;
  if (!SCENARIOS[o.scenario]) usage(`unknown scenario ${o.scenario}`);
  let stacks;
  if (o.stack === 'mixed') stacks = ['jssip', 'sipjs'];
  else if (o.stack.includes(',')) stacks = o.stack.split(',');
  else stacks = [o.stack, o.stack];
  for (const s of stacks) if (s !== 'jssip' && s !== 'sipjs') usage(`unknown stack ${s}`);
  installBrowserGlobals();
  const timer = setTimeout(() => {
    out({ step: 'global_timeout', ok: false, error: `scenario did not finish within ${o.timeout} s` });
    dumpWire();
    process.exit(2);
  }, o.timeout * 1000);
  timer.unref();
  // --bob-url: bob connects elsewhere (e.g. alice over wss://, bob over ws://).
  const make = (stack, name, url) =>
    (stack === 'jssip' ? makeJssipUser : makeSipjsUser)(name, { ...o, url });
  ctx.alice = make(stacks[0], `alice${o.suffix}`, o.url);
  ctx.bob = make(stacks[1], `bob${o.suffix}`, o.bobUrl || o.url);
  if (o.scenario === 'fork') {
    // A second user agent of bob's AoR (its wire trace is bob2's).
    const forkStack = o.forkStack || (stacks[1] === 'jssip' ? 'sipjs' : 'jssip');
    ctx.bob2 = (forkStack === 'jssip' ? makeJssipUser : makeSipjsUser)(`bob2${o.suffix}`,
      { ...o, url: o.url, aorUser: `bob${o.suffix}` });
  }
  out({ step: 'start', ok: true, scenario: o.scenario, alice: stacks[0], bob: stacks[1], url: o.url, bobUrl: o.bobUrl || o.url,
    domain: o.domain, versions: versions() });
  try {
    await setup(o);
    for (const sc of SCENARIOS[o.scenario]) await sc();
    await teardown();
  } catch (e) {
    out({ result: 'fail', ok: false, scenario: o.scenario, error: e && e.message ? e.message : String(e) });
    log(`FAIL: ${o.scenario} (${stacks.join('/')}): ${e && e.message}`);
    dumpWire();
    // best effort: do not leave bindings behind on the server under test
    const regd = users().filter((u) => u.contact);
    await Promise.race([Promise.all(regd.map((u) => u.unregister().catch(() => null))), sleep(1000)]);
    process.exit(1);
  }
  out({ result: 'pass', ok: true, scenario: o.scenario, alice: stacks[0], bob: stacks[1] });
  process.exit(0);
}

function versions() {
  const v = (p) => { try { return require(`${p}/package.json`).version; } catch (e) { return null; } };
  return { node: process.version, jssip: v('jssip'), 'sip.js': v('sip.js'), ws: v('ws') };
}

process.on('unhandledRejection', (e) => {
  if (OPTS && OPTS.trace) log(`unhandled rejection: ${e && e.stack || e}`);
});

if (require.main === module) {
  main();
} else {
  // Used as a library by failover.js: the stack adapters, the wire trace and the steps.
  module.exports = {
    setOpts: (o) => { OPTS = o; CHALLENGED = !!o.password; },
    installBrowserGlobals, makeJssipUser, makeSipjsUser, step, assert, until, sleep, out, log,
    wire, closes, opened, mark, expectWire, isReq, isResp, establish, hangup, splitContacts, contactUri,
    dumpWire, versions,
  };
}
