// Sends one OPTIONS over WebSocket (subprotocol "sip", RFC 7118) with the `ws` npm package of
// tests/js and prints the reply's status line; exits 1 without a reply within 5 s.
//   NODE_PATH=tests/js/node_modules node pkg/ws-options.js ws://127.0.0.1:8080/
const WebSocket = require('ws');
const url = process.argv[2];
const ws = new WebSocket(url, 'sip');
const timer = setTimeout(() => { console.error('no reply within 5 s'); process.exit(1); }, 5000);
ws.on('error', (e) => { console.error(`${url}: ${e.message}`); process.exit(1); });
ws.on('open', () => {
  ws.send([
    'OPTIONS sip:127.0.0.1 SIP/2.0',
    'Via: SIP/2.0/WS pkgtest.invalid;branch=z9hG4bKpkgtest1',
    'Max-Forwards: 70',
    'To: <sip:127.0.0.1>',
    'From: <sip:pkgtest@example.com>;tag=pkgtest',
    'Call-ID: pkgtest-1@pkgtest.invalid',
    'CSeq: 1 OPTIONS',
    'Content-Length: 0',
    '', '',
  ].join('\r\n'));
});
ws.on('message', (data) => {
  clearTimeout(timer);
  console.log(data.toString().split('\r\n')[0]);
  ws.close();
  process.exit(0);
});
