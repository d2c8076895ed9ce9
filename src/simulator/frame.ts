/**
 * One unmasked, final WebSocket text frame (RFC 6455 §5.2) holding `payload`. The simulator frames an
 * event once and writes the same bytes to every subscriber's socket, instead of letting ws frame the
 * same message once per subscriber. Safe beside ws's own writes because permessage-deflate is off, so
 * ws writes each of its frames synchronously and never splits one around ours.
 */
export function textFrame(payload: string): Buffer {
  const len = Buffer.byteLength(payload);
  const header = len < 126 ? 2 : len < 65_536 ? 4 : 10;
  const buf = Buffer.allocUnsafe(header + len);
  buf[0] = 0x81; // FIN + text
  if (len < 126) {
    buf[1] = len;
  } else if (len < 65_536) {
    buf[1] = 126;
    buf.writeUInt16BE(len, 2);
  } else {
    buf[1] = 127;
    buf.writeUInt32BE(Math.floor(len / 2 ** 32), 2);
    buf.writeUInt32BE(len >>> 0, 6);
  }
  buf.write(payload, header, 'utf8');
  return buf;
}
