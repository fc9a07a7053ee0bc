// Sends one OPTIONS over UDP (RFC 3261 §18) with Node's dgram and prints the reply's status
// line; retransmits every 500 ms (timer E) and exits 1 without a reply within 5 s.
//   node pkg/udp-options.js 127.0.0.1 5060
const dgram = require('dgram');
const [host, port] = [process.argv[2], Number(process.argv[3])];
const sock = dgram.createSocket('udp4');
const timer = setTimeout(() => { console.error('no reply within 5 s'); process.exit(1); }, 5000);
sock.on('error', (e) => { console.error(`${host}:${port}: ${e.message}`); process.exit(1); });
sock.on('message', (data) => {
  clearTimeout(timer);
  console.log(data.toString().split('\r\n')[0]);
  process.exit(0);
});
sock.bind(0, '127.0.0.1', () => {
  const me = sock.address();
  const msg = Buffer.from([
    'OPTIONS sip:127.0.0.1 SIP/2.0',
    `Via: SIP/2.0/UDP ${me.address}:${me.port};rport;branch=z9hG4bKpkgtest2`,
    'Max-Forwards: 70',
    'To: <sip:127.0.0.1>',
    'From: <sip:pkgtest@example.com>;tag=pkgtest',
    'Call-ID: pkgtest-2@pkgtest.invalid',
    'CSeq: 1 OPTIONS',
    'Content-Length: 0',
    '', '',
  ].join('\r\n'));
  const send = () => sock.send(msg, port, host);
  send();
  setInterval(send, 500);
});
