// Sends one OPTIONS over TCP (RFC 3261 §18, framed by Content-Length) with Node's net and
// prints the reply's status line; exits 1 without a reply within 5 s.
//   node pkg/tcp-options.js 127.0.0.1 5060
const net = require('net');
const [host, port] = [process.argv[2], Number(process.argv[3])];
const timer = setTimeout(() => { console.error('no reply within 5 s'); process.exit(1); }, 5000);
const sock = net.connect(port, host, () => {
  const me = sock.address();
  sock.write([
    'OPTIONS sip:127.0.0.1 SIP/2.0',
    `Via: SIP/2.0/TCP ${me.address}:${me.port};branch=z9hG4bKpkgtest3`,
    'Max-Forwards: 70',
    'To: <sip:127.0.0.1>',
    'From: <sip:pkgtest@example.com>;tag=pkgtest',
    'Call-ID: pkgtest-3@pkgtest.invalid',
    'CSeq: 1 OPTIONS',
    'Content-Length: 0',
    '', '',
  ].join('\r\n'));
});
let got = '';
sock.on('error', (e) => { console.error(`${host}:${port}: ${e.message}`); process.exit(1); });
sock.on('data', (data) => {
  got += data.toString();
  if (got.includes('\r\n')) {
    clearTimeout(timer);
    console.log(got.split('\r\n')[0]);
    process.exit(0);
  }
});
