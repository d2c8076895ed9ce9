import t from 'tap';
import { Parser, type ParserEvent } from '@nats-io/nats-core/internal';
import type { NatsConnection } from '@nats-io/transport-node';
import { AckSplitter, hookAcks } from '../src/sinks/nats/acks.js';
import { readPubAck } from '../src/sinks/nats/sink.js';

// The PubAcks read from the socket's bytes (src/sinks/nats/acks.ts) against the client's own
// parser: however the bytes are cut into chunks, our acks come out with their seq and payload, and
// every other frame reaches the client's parser whole and in order, as if nothing were in between.

const INBOX = '_INBOX.Ab3-_x9QzT01.';
const SID = 7;

const ack = (seq: number, sid = SID, extra = ''): string => {
  const body = `{"stream":"FEEDKEEPER", "seq":${seq}${extra}}`;
  return `MSG ${INBOX}${seq} ${sid}  ${body.length}\r\n${body}\r\n`;
};
const msg = (subject: string, sid: number, body: string, reply = ''): string => `MSG ${subject} ${sid} ${reply}${reply ? ' ' : ''}${Buffer.byteLength(body)}\r\n${body}\r\n`;

/** A server's output: our acks among everything else it may send on the connection. */
function stream(): string {
  const status = 'NATS/1.0 503\r\n\r\n';
  const big = 'x'.repeat(10_000);
  return [
    'INFO {"server_id":"N1","version":"2.9.10","headers":true,"max_payload":1048576}\r\n',
    '+OK\r\n',
    ack(1),
    'PING\r\n',
    ack(2),
    ack(3, SID, ',"duplicate": true'),
    // Our inbox on another sid, with a reply subject, and a no-responders status: the parser's.
    ack(4, SID + 1),
    msg(`${INBOX}5`, SID, '{"stream":"FEEDKEEPER", "seq":5}', '_INBOX.other.1'),
    `HMSG ${INBOX}6 ${SID} ${status.length} ${status.length}\r\n${status}\r\n`,
    // A subject that only begins like ours, a payload that looks like an ack frame, lower case.
    msg(`${INBOX}7x`, SID, '{}'),
    msg('other.subject', 3, `a\r\n${ack(99)}b`),
    `msg ${INBOX}8 ${SID} 2\r\nhi\r\n`,
    ack(9),
    '-ERR \'Permissions Violation\'\r\n',
    msg('big.one', 3, big),
    ack(10),
    'PONG\r\n',
    ack(123456789012),
    `MSG ${INBOX}11\t${SID}\t2\r\n{}\r\n`,
  ].join('');
}

function describe(e: ParserEvent): string {
  const text = (b: Uint8Array | undefined): string => (b === undefined ? '' : Buffer.from(b).toString());
  if (e.msg !== undefined) return `ev ${e.kind} ${text(e.msg.subject)} ${e.msg.sid} ${text(e.msg.reply)} ${e.msg.hdr} ${text(e.data)}`;
  return `ev ${e.kind} ${text(e.data)}`;
}

const ackSubject = new RegExp(`^${INBOX.replace(/[.]/g, '\\.')}(\\d+)$`);

/** A parser event, an ack of ours (as the sink's subscription callback reads it) marked as such. */
function label(e: ParserEvent): string {
  const seq = e.msg === undefined ? null : ackSubject.exec(Buffer.from(e.msg.subject).toString())?.[1];
  // Ours: a plain MSG (no headers, no reply) on the inbox with our sid; but for the lower-case
  // `msg` frame (8), which nats-server never writes: that one is the parser's.
  const ours = e.kind === 2 && seq != null && seq !== '8' && e.msg!.hdr < 0 && e.msg!.reply === undefined && e.msg!.sid === SID;
  return ours ? `ack ${seq} ${Buffer.from(e.data!).toString()}` : describe(e);
}

/** What the client's parser alone makes of it. */
function reference(bytes: Buffer): string[] {
  const log: string[] = [];
  new Parser({ push: (e: ParserEvent) => void log.push(label(e)) }).parse(bytes);
  return log;
}

/**
 * Through the splitter: the acks it read and the parser's events in one log (an ack the parser
 * got, when a large frame made a chunk the parser's, is one too), and how many it read itself.
 */
function split(bytes: Buffer, cuts: number[]): { log: string[]; read: number } {
  const log: string[] = [];
  let read = 0;
  const p = new Parser({ push: (e: ParserEvent) => void log.push(label(e)) });
  const s = new AckSplitter(
    INBOX,
    SID,
    (seq, buf, start, end) => {
      read++;
      log.push(`ack ${seq} ${Buffer.from(buf.subarray(start, end)).toString()}`);
    },
    (buf) => p.parse(buf),
    () => p.state === 0,
  );
  let at = 0;
  for (const c of [...cuts, bytes.length]) {
    // Each chunk a buffer of its own, as the socket delivers them.
    s.parse(Buffer.from(bytes.subarray(at, c)));
    at = c;
  }
  return { log, read };
}

t.test('our acks from the bytes, everything else to the parser in order, however the chunks fall', async (t) => {
  const bytes = Buffer.from(stream());
  const want = reference(bytes);
  t.same(
    want.filter((l) => l.startsWith('ack')).map((l) => l.split(' ')[1]),
    ['1', '2', '3', '9', '10', '123456789012', '11'],
    'the reference tells our acks from the rest',
  );
  t.same(split(bytes, []), { log: want, read: 7 }, 'one chunk: every ack of ours read from the bytes');
  const same = (cuts: number[]): boolean => JSON.stringify(split(bytes, cuts).log) === JSON.stringify(want);
  // A frame over 4 KiB cut in two is the parser's from there to the end of the chunk after.
  const bigFrom = bytes.indexOf('MSG big.one');
  const bigTo = bytes.indexOf('MSG', bigFrom + 1);
  let bad = 0;
  let unread = 0;
  for (let c = 1; c < bytes.length; c++) {
    if (!same([c])) bad++;
    if ((c <= bigFrom || c >= bigTo) && split(bytes, [c]).read !== 7) unread++;
  }
  t.equal(bad, 0, 'two chunks, cut at every byte');
  t.equal(unread, 0, 'every ack read from the bytes wherever the cut, but in a large frame not ours');
  const rnd = (() => {
    let x = 12345;
    return (n: number) => ((x = (x * 1103515245 + 12345) % 2 ** 31), x % n);
  })();
  bad = 0;
  for (let r = 0; r < 300; r++) {
    const cuts: number[] = [];
    for (let at = rnd(40); at < bytes.length; at += 1 + rnd(r % 2 === 0 ? 12 : 3000)) cuts.push(at);
    if (!same(cuts)) bad++;
  }
  t.equal(bad, 0, '300 random cuttings, from a few bytes a chunk to thousands');
});

t.test('a parser in the middle of a frame gets whole chunks until it is between frames', async (t) => {
  const log: string[] = [];
  const p = new Parser({ push: (e: ParserEvent) => void log.push(describe(e)) });
  const acks: number[] = [];
  const s = new AckSplitter(INBOX, SID, (seq) => void acks.push(seq), (buf) => p.parse(buf), () => p.state === 0);
  p.parse(Buffer.from('PI'));
  s.parse(Buffer.from(`NG\r\n${ack(1)}${ack(2).slice(0, 20)}`));
  t.same(acks, [], 'read by the parser');
  t.equal(log.filter((l) => l.includes(INBOX)).length, 1);
  s.parse(Buffer.from(`${ack(2).slice(20)}${ack(3)}`));
  t.same(acks, [], 'the parser was still in a frame at the chunk\'s start');
  s.parse(Buffer.from(ack(4)));
  t.same(acks, [4], 'then ours again');
  t.equal(log.length, 4, 'PING and acks 1-3 by the parser');
});

t.test('hookAcks: this parser and the next (a reconnect makes a new one), counted, unhooked', async (t) => {
  const events: string[] = [];
  const newParser = (): Parser => new Parser({ push: (e: ParserEvent) => void events.push(describe(e)) });
  const proto = { parser: newParser(), inMsgs: 0, inBytes: 0 };
  const acks: number[] = [];
  const unhook = hookAcks({ protocol: proto } as unknown as NatsConnection, INBOX, SID, (seq) => void acks.push(seq));
  t.ok(unhook);
  proto.parser.parse(Buffer.from(`${ack(1)}PING\r\n`));
  t.same(acks, [1]);
  t.equal(events.length, 1, 'PING to the parser');
  t.same([proto.inMsgs, proto.inBytes], [1, ack(1).split('\r\n')[1]!.length], 'the client\'s message counters');
  proto.parser = newParser();
  proto.parser.parse(Buffer.from(ack(2)));
  t.same(acks, [1, 2], 'the new parser is hooked too');
  unhook!();
  proto.parser.parse(Buffer.from(ack(3)));
  t.same(acks, [1, 2], 'unhooked: the parser reads it');
  t.equal(events.length, 2);
  t.equal(hookAcks({} as NatsConnection, INBOX, SID, () => undefined), null, 'no protocol handler: nothing hooked');
});

t.test('readPubAck on a part of a chunk', async (t) => {
  const b = Buffer.from(`xx{"stream":"S", "seq":12}yy{"stream":"S", "seq":13,"duplicate": true}zz{"error":{"code":503}}`);
  t.same(readPubAck(b, 2, 26), { duplicate: false });
  t.same(readPubAck(b, 28, 70), { duplicate: true });
  t.equal(readPubAck(b, 72, b.length), null);
  t.equal(readPubAck(b, 2, 27), null, 'not the JSON of an ack');
});
