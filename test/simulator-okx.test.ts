import t, { type Test } from 'tap';
import { startVenueSimulator, type OkxSimulator, type VenueSimulatorOptions } from '../src/simulator/venues/index.js';
import { connect, refusedUpgrade, sleep, waitFor, type Client } from './fixtures/sim-client.js';
import { shape } from './helpers/shape.js';

/** Frames from ../shared/fixtures/okx/docs-examples.ndjson (OKX's v5 docs), verbatim. */
const FIXTURE = {
  trade:
    '{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","tradeId":"130639474","px":"42219.9","sz":"0.12060306","side":"buy","ts":"1630048897897","count":"3","source":"0","seqId":1234}]}',
  booksSnapshot:
    '{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"snapshot","data":[{"asks":[["8476.98","415","0","13"],["8477","7","0","2"],["8477.34","85","0","1"],["8477.56","1","0","1"],["8505.84","8","0","1"],["8506.37","85","0","1"],["8506.49","2","0","1"],["8506.96","100","0","2"]],"bids":[["8476.97","256","0","12"],["8475.55","101","0","1"],["8475.54","100","0","1"],["8475.3","1","0","1"],["8447.32","6","0","1"],["8447.02","246","0","1"],["8446.83","24","0","1"],["8446","95","0","3"]],"ts":"1597026383085","checksum":0,"prevSeqId":-1,"seqId":123456}]}',
  booksUpdate:
    '{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":[["8476.98","415","0","13"],["8477","7","0","2"],["8477.34","85","0","1"],["8477.56","1","0","1"],["8505.84","8","0","1"],["8506.37","85","0","1"],["8506.49","2","0","1"],["8506.96","100","0","2"]],"bids":[["8476.97","256","0","12"],["8475.55","101","0","1"],["8475.54","100","0","1"],["8475.3","1","0","1"],["8447.32","6","0","1"],["8447.02","246","0","1"],["8446.83","24","0","1"],["8446","95","0","3"]],"ts":"1597026383085","checksum":0,"prevSeqId":123456,"seqId":123457}]}',
  bbo:
    '{"arg":{"channel":"bbo-tbt","instId":"BCH-USDT-SWAP"},"data":[{"asks":[["111.06","55154","0","2"]],"bids":[["111.05","57745","0","2"]],"ts":"1670324386802","seqId":363996337}]}',
  books5:
    '{"arg":{"channel":"books5","instId":"BCH-USDT-SWAP"},"data":[{"asks":[["111.06","55154","0","2"],["111.07","53276","0","2"],["111.08","72435","0","2"],["111.09","70312","0","2"],["111.1","67272","0","2"]],"bids":[["111.05","57745","0","2"],["111.04","57109","0","2"],["111.03","69563","0","2"],["111.02","71248","0","2"],["111.01","65090","0","2"]],"instId":"BCH-USDT-SWAP","ts":"1670324386802","seqId":363996337}]}',
  ack:
    '{"id":"1512","event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT"},"connId":"a4d3ae55"}',
  error:
    '{"id":"1512","event":"error","code":"60012","msg":"Invalid request: {\\"op\\": \\"subscribe\\", \\"argss\\":[{ \\"channel\\" : \\"books\\", \\"instId\\" : \\"BTC-USD-191227\\"}]}","connId":"a4d3ae55"}',
  notice:
    '{"event":"notice","code":"64008","msg":"The connection will soon be closed for a service upgrade. Please reconnect.","connId":"a4d3ae55"}',
};
type Frame = Record<string, unknown> & { arg?: { channel: string; instId: string }; action?: string; data?: unknown };
type Row = Record<string, unknown>;

async function sim(t: Test, opts: Omit<VenueSimulatorOptions, 'venue'> = {}): Promise<OkxSimulator> {
  const s = await startVenueSimulator({ eventsPerSecond: 20, tickMs: 20, ...opts, venue: 'okx' });
  t.teardown(() => s.close());
  return s;
}

const publicUrl = (s: OkxSimulator): string => `${s.wsUrl}/ws/v5/public`;
const parse = (f: string): Frame => JSON.parse(f) as Frame;
/** Key order and types of a frame, and of its first data row when data is a list of objects. */
const shapes = (f: Frame): unknown[] => [shape(f), Array.isArray(f.data) ? shape(f.data[0]) : null];
const compact = (f: string): boolean => JSON.stringify(JSON.parse(f)) === f;
const sub = (channel: string, instId = 'BTC-USDT'): { channel: string; instId: string } => ({ channel, instId });
/** The data pushes of a channel received so far (not acks). */
const pushes = (c: Client, channel: string): Frame[] =>
  c.frames.filter((f) => f.startsWith(`{"arg":{"channel":"${channel}"`)).map(parse);
const row = (f: Frame): Row => (f.data as Row[])[0]!;

t.test('subscribe: one ack per arg in the fixture’s key order; id echoed only when sent; ping → pong', async (t) => {
  const s = await sim(t);
  const c = await connect(publicUrl(s));
  c.send({ id: '1512', op: 'subscribe', args: [sub('books'), sub('trades')] });
  await waitFor(() => c.frames.filter((f) => f.includes('"event":"subscribe"')).length === 2, 3000, 'acks');
  const acks = c.frames.filter((f) => f.includes('"event":"subscribe"'));
  t.ok(acks.every(compact));
  for (const a of acks) t.same(shape(JSON.parse(a)), shape(JSON.parse(FIXTURE.ack)));
  t.same(
    acks.map((a) => parse(a).arg),
    [sub('books'), sub('trades')],
  );
  const connId = parse(acks[0]!).connId as string;
  t.match(connId, /^[0-9a-f]{8}$/);
  c.send({ op: 'unsubscribe', args: [sub('trades')] });
  const unsub = parse(await c.next((f) => f.includes('"event":"unsubscribe"')));
  t.same(unsub, { event: 'unsubscribe', arg: sub('trades'), connId });
  t.same([...s.connections()[0]!.streams], ['books:BTC-USDT']);
  c.send('ping');
  t.equal(await c.next((f) => f === 'pong'), 'pong', 'the bare text');
  await c.close();
});

t.test('errors: 60012 for a bad request, 60018 naming an unknown instId or channel, 64001 for candles on /public', async (t) => {
  const s = await sim(t);
  const c = await connect(publicUrl(s));
  const bad = '{"op": "subscribe", "argss":[{ "channel" : "books", "instId" : "BTC-USD-191227"}]}';
  c.send(bad.replace('{', '{"id":"1512",'));
  const e1 = await c.next((f) => f.includes('"event":"error"'));
  t.same(shape(JSON.parse(e1)), shape(JSON.parse(FIXTURE.error)));
  t.match(parse(e1), { id: '1512', code: '60012', msg: /^Invalid request: / });
  c.send('not json');
  const e2 = parse(await c.next((f) => f.includes('not json')));
  t.same(Object.keys(e2), ['event', 'code', 'msg', 'connId'], 'no id when none was sent');
  c.send({ id: '2', op: 'subscribe', args: [sub('trades'), sub('trades', 'NOPE-USDT')] });
  t.match(parse(await c.next((f) => f.includes('"id":"2"'))), { event: 'error', code: '60018', msg: /channel:trades,instId:NOPE-USDT/ });
  c.send({ id: '3', op: 'subscribe', args: [sub('books42')] });
  t.match(parse(await c.next((f) => f.includes('"id":"3"'))), { code: '60018', msg: /channel:books42/ });
  c.send({ id: '4', op: 'subscribe', args: [sub('candle1m')] });
  t.match(parse(await c.next((f) => f.includes('"id":"4"'))), { code: '64001', msg: /\/business/ });
  t.equal(s.connections()[0]!.streams.size, 0, 'nothing of a refused request is subscribed');

  const b = await connect(`${s.wsUrl}/ws/v5/business`);
  b.send({ op: 'subscribe', args: [sub('candle1m')] });
  await b.next((f) => f.includes('"event":"subscribe"'));
  const candle = parse(await b.next((f) => f.startsWith('{"arg":{"channel":"candle1m"')));
  const bar = (candle.data as string[][])[0]!;
  t.equal(bar.length, 9);
  t.ok(bar.every((x) => typeof x === 'string'));
  t.equal(Number(bar[0]) % 60_000, 0, 'ts is the bar’s start');
  t.same(s.violations, []);
  await Promise.all([c.close(), b.close()]);
  t.equal((await refusedUpgrade(`${s.wsUrl}/ws/v5/private`)).status, 404);
});

t.test('trades: fixture key order; tradeId is the last of count contiguous IDs; skip() leaves a hole', async (t) => {
  const s = await sim(t);
  const c = await connect(publicUrl(s));
  c.send({ op: 'subscribe', args: [sub('trades')] });
  await waitFor(() => pushes(c, 'trades').length >= 6, 5000, 'trades');
  s.skip('trades:BTC-USDT', 5);
  await waitFor(() => s.skippedIds('trades:BTC-USDT').length === 5, 5000, 'skipped');
  const before = pushes(c, 'trades').length;
  await waitFor(() => pushes(c, 'trades').length >= before + 4, 5000, 'more trades');
  const frames = pushes(c, 'trades');
  t.ok(c.frames.filter((f) => f.includes('"channel":"trades"') && !f.includes('event')).every(compact));
  for (const f of frames) t.same(shapes(f), shapes(parse(FIXTURE.trade)));
  const covered = frames.flatMap((f) => {
    const r = row(f);
    const last = Number(r.tradeId);
    const n = Number(r.count);
    t.ok(n >= 1 && n <= 3, `count ${n}`);
    return Array.from({ length: n }, (_x, k) => last - n + 1 + k);
  });
  const skipped = s.skippedIds('trades:BTC-USDT');
  t.same(skipped, Array.from({ length: 5 }, (_x, k) => skipped[0]! + k), 'the skipped IDs are contiguous');
  const sent = s.sentIds('trades:BTC-USDT');
  t.same(
    sent.slice(0, covered.length + 5).filter((id) => !skipped.includes(id)),
    covered,
    'every ID but the skipped ones arrived, in order',
  );
  t.ok(sent.every((id, k) => k === 0 || id === sent[k - 1]! + 1), 'IDs contiguous per instrument');
  const holes = covered.filter((id, k) => k > 0 && id !== covered[k - 1]! + 1);
  t.same(holes, [skipped.at(-1)! + 1], 'one hole, just after the skipped IDs');
  await c.close();
});

t.test('books: snapshot with prevSeqId -1, then updates chained by prevSeqId with arbitrary steps', async (t) => {
  const s = await sim(t);
  const c = await connect(publicUrl(s));
  c.send({ op: 'subscribe', args: [sub('books'), sub('books5', 'BCH-USDT-SWAP'), sub('bbo-tbt', 'BCH-USDT-SWAP')] });
  await waitFor(() => pushes(c, 'books').length >= 8 && pushes(c, 'bbo-tbt').length >= 1 && pushes(c, 'books5').length >= 1, 5000, 'books');
  const books = pushes(c, 'books');
  t.equal(books[0]!.action, 'snapshot');
  t.same(shapes(books[0]!), shapes(parse(FIXTURE.booksSnapshot)));
  t.equal(row(books[0]!).prevSeqId, -1);
  for (const f of books.slice(1)) {
    t.equal(f.action, 'update');
    t.same(shapes(f), shapes(parse(FIXTURE.booksUpdate)));
  }
  const rows = books.map(row);
  t.ok(rows.every((r) => r.checksum === 0), 'checksum always 0');
  t.ok(rows.slice(1).every((r, k) => r.prevSeqId === rows[k]!.seqId), 'prevSeqId = the previous seqId');
  t.ok(rows.slice(1).some((r, k) => (r.seqId as number) - (rows[k]!.seqId as number) > 1), 'steps are not +1');
  t.same(s.sentIds('books:BTC-USDT').slice(0, rows.length), rows.map((r) => r.seqId));
  t.same(shapes(pushes(c, 'books5')[0]!), shapes(parse(FIXTURE.books5)));
  t.same(shapes(pushes(c, 'bbo-tbt')[0]!), shapes(parse(FIXTURE.bbo)));
  t.equal((row(pushes(c, 'books5')[0]!).asks as unknown[]).length, 5);

  s.resetBookSeq('books:BTC-USDT');
  const from = c.frames.length;
  await waitFor(() => pushes(c, 'books').length >= books.length + 3, 5000, 'after the reset');
  const after = c.frames.slice(from).filter((f) => f.startsWith('{"arg":{"channel":"books"')).map((f) => row(parse(f)));
  const drop = after.findIndex((r) => (r.seqId as number) < (r.prevSeqId as number));
  t.ok(drop >= 0, 'one update has a seqId below its prevSeqId');
  t.ok(
    after.slice(1).every((r, k) => r.prevSeqId === after[k]!.seqId),
    'the chain still holds',
  );
  t.throws(() => s.resetBookSeq('trades:BTC-USDT'), TypeError);
  await c.close();
});

t.test('booksSnapshot: false starts with updates; skip() on books breaks the chain', async (t) => {
  const s = await sim(t, { booksSnapshot: false });
  const c = await connect(publicUrl(s));
  c.send({ op: 'subscribe', args: [sub('books')] });
  await waitFor(() => pushes(c, 'books').length >= 3, 5000, 'updates');
  t.ok(pushes(c, 'books').every((f) => f.action === 'update'));
  t.not(row(pushes(c, 'books')[0]!).prevSeqId, -1);
  s.skip('books:BTC-USDT', 2);
  await waitFor(() => s.skippedIds('books:BTC-USDT').length === 2, 5000, 'skip');
  const n = pushes(c, 'books').length;
  await waitFor(() => pushes(c, 'books').length >= n + 1, 5000, 'the next update');
  const rows = pushes(c, 'books').map(row);
  const breaks = rows.slice(1).filter((r, k) => r.prevSeqId !== rows[k]!.seqId);
  t.equal(breaks.length, 1);
  t.equal(breaks[0]!.prevSeqId, s.skippedIds('books:BTC-USDT')[1], 'names the last skipped seqId');
  await c.close();
});

t.test('the 4th connection request within 1 s is refused with 429 and a violation', async (t) => {
  const s = await sim(t);
  const clients = await Promise.all([1, 2, 3].map(() => connect(publicUrl(s))));
  const r = await refusedUpgrade(publicUrl(s));
  t.equal(r.status, 429);
  t.same(
    s.violations.map((v) => [v.rule, v.connId]),
    [['connection_attempts', 0]],
  );
  await Promise.all(clients.map((c) => c.close()));
  s.advance(1050); // the window has passed (the refused attempt counted too)
  const d = await connect(publicUrl(s));
  await d.close();
});

t.test('subscribe/unsubscribe requests past the hourly budget get 50011 and a violation', async (t) => {
  const s = await sim(t, { subscribesPerHour: 3 });
  const c = await connect(publicUrl(s));
  c.send({ id: '1', op: 'subscribe', args: [sub('trades')] });
  c.send({ id: '2', op: 'unsubscribe', args: [sub('trades')] });
  c.send({ id: '3', op: 'subscribe', args: [sub('tickers'), sub('trades')] });
  c.send({ id: '4', op: 'subscribe', args: [sub('books')] });
  const e = parse(await c.next((f) => f.includes('"id":"4"')));
  t.same(Object.keys(e), ['id', 'event', 'code', 'msg', 'connId']);
  t.match(e, { event: 'error', code: '50011' });
  t.same([...s.connections()[0]!.streams], ['tickers:BTC-USDT', 'trades:BTC-USDT'], 'the refused request subscribed nothing');
  t.same(
    s.violations.map((v) => [v.rule, v.connId]),
    [['subscribes_per_hour', s.connections()[0]!.id]],
  );
  c.send('ping'); // pings are not subscribe requests
  await c.next((f) => f === 'pong');
  await c.close();
});

t.test('4004 after the compressed 30 s with no data and no client message; data or pings keep it open', async (t) => {
  const s = await sim(t, { pongTimeoutMs: 1500 });
  const silent = await connect(publicUrl(s));
  const fed = await connect(publicUrl(s));
  const pinging = await connect(publicUrl(s));
  const silentId = s.connections()[0]!.id;
  fed.send({ op: 'subscribe', args: [sub('trades')] }); // then silent: the pushes keep it alive
  const timer = setInterval(() => pinging.send('ping'), 400);
  t.teardown(() => clearInterval(timer));
  const opened = Date.now();
  t.same(await silent.closed, { code: 4004, reason: 'No data received in 30s.' });
  t.ok(Date.now() - opened >= 1400, 'not before the timeout');
  t.same(
    s.violations.map((v) => [v.rule, v.connId]),
    [['ping_timeout', silentId]],
  );
  // Their deadlines were checked with the silent one's; one more push and one more pong after it.
  await fed.next((f) => f.startsWith('{"arg"'), { from: fed.frames.length });
  await pinging.next((f) => f === 'pong', { from: pinging.frames.length });
  t.notOk(fed.isClosed(), 'data flowing');
  t.notOk(pinging.isClosed(), 'pinging');
  await Promise.all([fed.close(), pinging.close()]);
});

t.test('serverShutdown: the 64008 notice, data during the grace period, then close', async (t) => {
  const s = await sim(t);
  const c = await connect(publicUrl(s));
  c.send({ op: 'subscribe', args: [sub('trades')] });
  await c.next((f) => f.startsWith('{"arg"'));
  const connId = parse(c.frames[0]!).connId;
  t.equal(s.serverShutdown(undefined, { graceMs: 400 }), 1);
  const notice = await c.next((f) => f.includes('"event":"notice"'));
  t.same(shape(JSON.parse(notice)), shape(JSON.parse(FIXTURE.notice)));
  t.same(JSON.parse(notice), { ...JSON.parse(FIXTURE.notice), connId });
  await c.next((f) => f.startsWith('{"arg"'), { from: c.frames.indexOf(notice) + 1 });
  t.equal((await c.closed).code, 1001);
});

t.test('stall: no data, no pongs, input ignored, TCP open, no 4004 cut', async (t) => {
  const s = await sim(t, { pongTimeoutMs: 800 });
  const c = await connect(publicUrl(s));
  c.send({ op: 'subscribe', args: [sub('trades')] });
  await waitFor(() => pushes(c, 'trades').length >= 2, 3000, 'data');
  t.equal(s.stall(), 1);
  await sleep(100); // frames already on the wire
  const n = c.frames.length;
  c.send('ping');
  c.send({ op: 'subscribe', args: [sub('books')] });
  await sleep(1000);
  t.equal(c.frames.length, n, 'nothing');
  t.notOk(c.isClosed());
  t.equal(s.connections()[0]!.state, 'stalled');
  t.same(s.violations, []);
  c.ws.terminate();
  await waitFor(() => s.connections().length === 0, 3000, 'the server notices');
});

t.test('drop and dropAll: close codes and abrupt close', async (t) => {
  const s = await sim(t);
  const a = await connect(publicUrl(s));
  const b = await connect(publicUrl(s));
  const [ia, ib] = s.connections().map((x) => x.id);
  s.drop(ia!, { code: 4000 });
  t.equal((await a.closed).code, 4000);
  s.drop(ib!, { abrupt: true });
  t.equal((await b.closed).code, 1006);
  await waitFor(() => s.connections().length === 0, 2000, 'both gone');
  const info = s.connections();
  t.same(info, []);
  s.advance(1000); // 3 connection requests per second
  const c = await connect(publicUrl(s));
  c.send({ op: 'subscribe', args: [sub('trades')] });
  await c.next((f) => f.includes('event'));
  t.match(s.connections()[0], { path: '/ws/v5/public', kind: 'market', messagesFromClient: 1, state: 'open' });
  t.equal(s.dropAll({ code: 4001 }), 1);
  t.equal((await c.closed).code, 4001);
  t.equal(s.totalConnections, 3);
});

t.test('advanceWhileIdle: IDs advance with nobody subscribed, so a resubscriber sees a real gap', async (t) => {
  const s = await sim(t);
  const c = await connect(publicUrl(s));
  c.send({ op: 'subscribe', args: [sub('trades')] });
  await waitFor(() => pushes(c, 'trades').length >= 2, 3000, 'trades');
  c.send({ op: 'unsubscribe', args: [sub('trades')] });
  await c.next((f) => f.includes('"event":"unsubscribe"'));
  const lastSeen = Math.max(...pushes(c, 'trades').map((f) => Number(row(f).tradeId)));
  s.advance(400); // about 8 pushes at 20 per second, while nobody listens
  const from = c.frames.length;
  c.send({ op: 'subscribe', args: [sub('trades')] });
  const first = row(parse(await c.next((f) => f.startsWith('{"arg":{"channel":"trades"'), { from })));
  const firstId = Number(first.tradeId) - Number(first.count) + 1;
  t.ok(firstId > lastSeen + 1, `a gap after ${lastSeen}: next ${firstId}`);
  const sent = s.sentIds('trades:BTC-USDT');
  t.ok(sent.includes(lastSeen + 1) && sent.includes(firstId - 1), 'sentIds lists the IDs generated while idle');
  t.same(s.skippedIds('trades:BTC-USDT'), [], 'not skipped: nobody was listening');
  await c.close();
});

t.test('a client that does not read is cut as a slow consumer and noted', async (t) => {
  const s = await sim(t, { eventsPerSecond: 500, maxBufferedBytes: 64 * 1024 });
  const c = await connect(publicUrl(s));
  const instIds = ['BTC-USDT', 'ETH-USDT', 'SOL-USDT', 'XRP-USDT', 'DOGE-USDT', 'LTC-USDT', 'TON-USDT', 'BTC-USDC'];
  c.send({ op: 'subscribe', args: instIds.flatMap((i) => [sub('books5', i), sub('tickers', i), sub('trades', i)]) });
  await c.next((f) => f.startsWith('{"arg"'));
  c.ws.pause(); // stop reading: the kernel buffers fill, then the server's
  await waitFor(() => s.notes.length > 0, 15_000, 'slow consumer note');
  t.equal(s.notes[0]?.kind, 'slow_consumer');
  await waitFor(() => s.connections().length === 0, 3000, 'cut');
  t.same(s.violations, [], 'not a violation of the client');
  c.ws.terminate();
});
