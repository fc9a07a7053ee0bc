#!/usr/bin/env node
'use strict';
/*
 * A SIP-over-secure-WebSocket UAS for the outbound wss tests (tests/tests/wss_stacks.rs):
 * an HTTPS server (Node's TLS, the given certificate and key) with the `ws` package on it,
 * subprotocol `sip` (RFC 7118).
 *
 *   node tls-ws-server.js --cert cert.pem --key key.pem [--host 127.0.0.1] [--port 0]
 *
 * stdout, one JSON object per line:
 *   {"ready":true,"port":N}                       once listening
 *   {"event":"connection","protocol":"sip","remote":"ip:port","tls":"TLSv1.3","sni":NAME|null,"host":HOST}
 *   {"event":"sip","data":"<message text>"}        every SIP message received
 *   {"event":"tls_error","error":"..."}            a TLS handshake that failed (client refused us)
 *   {"event":"close","code":N}
 * A request is answered 200 OK (MESSAGE and OPTIONS), its reply built from the request's
 * Vias, From, To (a tag added), Call-ID and CSeq; ACK and replies are not answered.
 */
const fs = require('fs');
const https = require('https');
const path = require('path');
const { WebSocketServer } = require(path.join(__dirname, 'node_modules', 'ws'));

function parseArgs(argv) {
  const o = { cert: null, key: null, host: '127.0.0.1', port: 0 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) usage(`missing value for ${a}`);
      return argv[++i];
    };
    switch (a) {
      case '--cert': o.cert = val(); break;
      case '--key': o.key = val(); break;
      case '--host': o.host = val(); break;
      case '--port': o.port = Number(val()); break;
      default: usage(`unknown argument ${a}`);
    }
  }
  if (!o.cert || !o.key) usage('--cert and --key are required');
  return o;
}

function usage(msg) {
  process.stderr.write(`error: ${msg}\nusage: node tls-ws-server.js --cert FILE --key FILE [--host IP] [--port N]\n`);
  process.exit(3);
}

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

/** Header lines of a SIP message (unfolded, compact forms left as they are). */
function headerLines(msg) {
  const head = msg.split('\r\n\r\n')[0];
  return head.split('\r\n').slice(1);
}

/** Every value of header `name` (long or compact form), in order. */
function values(msg, name, compact) {
  const res = [];
  for (const l of headerLines(msg)) {
    const i = l.indexOf(':');
    if (i < 0) continue;
    const n = l.slice(0, i).trim().toLowerCase();
    if (n === name || (compact && n === compact)) res.push(l.slice(i + 1).trim());
  }
  return res;
}

function reply(req, code, reason) {
  const lines = [`SIP/2.0 ${code} ${reason}`];
  for (const v of values(req, 'via', 'v')) lines.push(`Via: ${v}`);
  const from = values(req, 'from', 'f')[0];
  let to = values(req, 'to', 't')[0];
  if (to && !/;\s*tag=/i.test(to)) to += ';tag=tlsws1';
  lines.push(`From: ${from}`, `To: ${to}`);
  lines.push(`Call-ID: ${values(req, 'call-id', 'i')[0]}`);
  lines.push(`CSeq: ${values(req, 'cseq')[0]}`);
  lines.push('Content-Length: 0', '', '');
  return lines.join('\r\n');
}

function main() {
  const o = parseArgs(process.argv.slice(2));
  const server = https.createServer({ cert: fs.readFileSync(o.cert), key: fs.readFileSync(o.key) });
  server.on('tlsClientError', (err) => out({ event: 'tls_error', error: String(err && err.message || err) }));
  const wss = new WebSocketServer({
    server,
    handleProtocols: (protocols) => (protocols.has('sip') ? 'sip' : false),
  });
  wss.on('connection', (ws, req) => {
    out({
      event: 'connection',
      protocol: ws.protocol,
      remote: `${req.socket.remoteAddress}:${req.socket.remotePort}`,
      tls: req.socket.getProtocol ? req.socket.getProtocol() : null,
      sni: req.socket.servername || null,
      host: req.headers.host || null,
    });
    ws.on('message', (data) => {
      const text = data.toString('utf8');
      out({ event: 'sip', data: text });
      const m = /^([A-Z]+) \S+ SIP\/2\.0\r\n/.exec(text);
      if (m && m[1] !== 'ACK') ws.send(reply(text, 200, 'OK'));
    });
    ws.on('close', (code) => out({ event: 'close', code }));
    ws.on('error', (e) => out({ event: 'ws_error', error: String(e && e.message || e) }));
  });
  server.listen(o.port, o.host, () => out({ ready: true, port: server.address().port }));
  // Stop with the test: stdin closes when the test process drops it.
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}

main();
