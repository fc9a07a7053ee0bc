// A HEP collector on UDP that decodes every datagram with sipcapture's hep-js (the decoder of
// Homer's node tools), for tests/tests/hep_gso.rs.
//
//   node hep-sink.js PORT
//
// Prints `listening PORT` once bound, then, once per 100 ms while anything changed, one line
//   `datagrams=N decoded=D padded=P sip=S bad=B max_len=M`
// N datagrams received; D of them decoded by hep-js.decapsulate() with a payload (chunk 15);
// P of them carrying a chunk of vendor 0xffff (sipcore's padding, skipped by the decoder);
// S payloads that start like a SIP message; B datagrams hep-js rejected or decoded without a
// payload (the first of them is printed once, in hex, as `bad_hex=...`); M the longest one.
'use strict';
const dgram = require('dgram');
const HEPjs = require('hep-js');

const port = Number(process.argv[2]);
// A collector's receive buffer is sized for bursts (capped by net.core.rmem_max); what still
// overflows it is counted by the kernel (/proc/net/udp `drops`), which the test adds.
const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
let n = 0, decoded = 0, padded = 0, sip = 0, bad = 0, maxLen = 0, changed = false, shownBad = false;

// Walks the chunks of a HEP3 datagram by hand: true if one has vendor 0xffff.
function hasPad(buf) {
  if (buf.length < 6 || buf.toString('latin1', 0, 4) !== 'HEP3') return false;
  const total = Math.min(buf.readUInt16BE(4), buf.length);
  let off = 6;
  while (off + 6 <= total) {
    const vendor = buf.readUInt16BE(off);
    const len = buf.readUInt16BE(off + 4);
    if (vendor === 0xffff) return true;
    if (len < 6) return false;
    off += len;
  }
  return false;
}

sock.on('message', (msg) => {
  n++;
  changed = true;
  maxLen = Math.max(maxLen, msg.length);
  if (hasPad(msg)) padded++;
  const d = HEPjs.decapsulate(msg);
  if (d && typeof d.payload === 'string' && d.payload.length > 0) {
    decoded++;
    if (/^(SIP\/2\.0 \d{3} |[A-Z]+ \S+ SIP\/2\.0\r\n)/.test(d.payload)) sip++;
  } else {
    bad++;
    if (!shownBad) {
      shownBad = true;
      console.log(`bad_hex=${msg.toString('hex')}`);
    }
  }
});

sock.bind(port, '127.0.0.1', () => console.log(`listening ${port}`));
setInterval(() => {
  if (!changed) return;
  changed = false;
  console.log(`datagrams=${n} decoded=${decoded} padded=${padded} sip=${sip} bad=${bad} max_len=${maxLen}`);
}, 100);
