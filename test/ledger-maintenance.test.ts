import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import t from 'tap';
import { binanceStatus } from '../src/venues/status.js';
import type { Clock, Timer } from '../src/clock.js';
import { createLogger, silentLogger } from '../src/log.js';
import { createMetrics } from '../src/metrics/registry.js';
import { MaintenanceCalendar, SystemStatusPoller } from '../src/ledger/maintenance.js';

const W_START = Date.parse('2026-07-09T07:00:00Z');
const W_END = Date.parse('2026-07-09T08:00:00Z');
const SHIPPED = { start: '2026-07-09T07:00:00Z', end: '2026-07-09T08:00:00Z', reason: 'Binance spot maintenance 2026-07-09 (up to 1 h)' };
const STATUS_REASON = 'system_maintenance (GET /sapi/v1/system/status)';

/** A clock whose timers fire only when advance() passes their time. */
function fakeClock(start: number): Clock & { advance(ms: number): void; set(ms: number): void } {
  let now = start;
  let seq = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  const clock = {
    now: () => now,
    setTimeout(fn: () => void, ms: number): Timer {
      const id = ++seq;
      timers.set(id, { at: now + ms, fn });
      return id as unknown as Timer;
    },
    clearTimeout(timer: Timer | undefined): void {
      if (timer !== undefined) timers.delete(timer as unknown as number);
    },
    advance(ms: number): void {
      const target = now + ms;
      for (;;) {
        let next: [number, { at: number; fn: () => void }] | undefined;
        for (const e of timers) if (e[1].at <= target && (next === undefined || e[1].at < next[1].at)) next = e;
        if (next === undefined) break;
        timers.delete(next[0]);
        now = next[1].at;
        next[1].fn();
      }
      now = target;
    },
    set(ms: number): void {
      now = ms;
    },
  };
  return clock;
}

function calendarAt(now: number, windows = [SHIPPED]) {
  const metrics = createMetrics({ defaultMetrics: false });
  const clock = fakeClock(now);
  const calendar = new MaintenanceCalendar({ windows, logger: silentLogger(), metrics, clock });
  const gauge = async (): Promise<number> => (await metrics.maintenanceActive.get()).values[0]?.value ?? -1;
  return { calendar, clock, metrics, gauge };
}

t.test('the calendar window: overlap rules', async (t) => {
  const { calendar, clock } = calendarAt(W_START - 3_600_000);
  t.teardown(() => calendar.close());
  const R = SHIPPED.reason;
  t.equal(calendar.reasonAt(W_START - 1), null);
  t.equal(calendar.reasonAt(W_START), R, 'start inclusive');
  t.equal(calendar.reasonAt(W_END - 1), R);
  t.equal(calendar.reasonAt(W_END), null, 'end exclusive');

  t.equal(calendar.reasonFor(W_START - 60_000, W_START - 30_000), null, 'entirely before');
  t.equal(calendar.reasonFor(W_START - 30_000, W_START + 10_000), R, 'starts before, ends inside');
  t.equal(calendar.reasonFor(W_END - 1_000, W_END + 300_000), R, 'starts inside, ends after');
  t.equal(calendar.reasonFor(W_START - 1_000, W_END + 1_000), R, 'spans the window');
  t.equal(calendar.reasonFor(W_END, W_END + 60_000), null, 'starts at the end');
  t.equal(calendar.reasonFor(W_START + 1_800_000, W_START + 1_800_000), R, 'an instant inside');
  t.equal(calendar.reasonFor(W_END, W_END), null, 'an instant at the end');

  // An open gap overlaps up to now.
  clock.set(W_START - 5_000);
  t.equal(calendar.reasonFor(W_START - 600_000, null), null, 'open gap, window not reached yet');
  clock.set(W_START + 5_000);
  t.equal(calendar.reasonFor(W_START - 600_000, null), R, 'open gap that ran into the window');
});

t.test('the earliest-starting overlapping window gives the reason', async (t) => {
  const { calendar } = calendarAt(0, [
    { start: '2026-07-09T07:30:00Z', end: '2026-07-09T09:00:00Z', reason: 'later' },
    { start: '2026-07-09T07:00:00Z', end: '2026-07-09T08:00:00Z', reason: 'earlier' },
  ]);
  t.teardown(() => calendar.close());
  t.equal(calendar.reasonFor(W_START + 2_000_000, W_START + 2_100_000), 'earlier');
  t.equal(calendar.reasonFor(W_END + 1, W_END + 2), 'later');
  t.same(
    calendar.windows().map((w) => w.reason),
    ['earlier', 'later'],
  );
});

t.test('bad windows are config errors naming the key', async (t) => {
  const mk = (w: { start: string; end: string; reason: string }) => () =>
    new MaintenanceCalendar({ windows: [SHIPPED, w], logger: silentLogger(), metrics: createMetrics({ defaultMetrics: false }) });
  t.throws(mk({ start: 'tomorrow', end: '2026-07-09T08:00:00Z', reason: 'x' }), { code: 'FK_ERR_CONFIG', key: 'maintenance.windows[1].start' });
  t.throws(mk({ start: '2026-07-09T08:00:00Z', end: '2026-07-09T07:00:00Z', reason: 'x' }), { code: 'FK_ERR_CONFIG', key: 'maintenance.windows[1].end' });
  t.throws(mk({ start: '2026-07-09T07:00:00Z', end: '2026-07-09T08:00:00Z', reason: ' ' }), { code: 'FK_ERR_CONFIG', key: 'maintenance.windows[1].reason' });
});

t.test('feedkeeper_maintenance_active follows the calendar on its own (timer at each boundary)', async (t) => {
  const { calendar, clock, gauge } = calendarAt(W_START - 60_000);
  t.teardown(() => calendar.close());
  t.equal(await gauge(), 0);
  clock.advance(60_000);
  t.equal(await gauge(), 1, 'set when the window begins');
  t.equal(calendar.active(), true);
  clock.advance(3_600_000);
  t.equal(await gauge(), 0, 'cleared when it ends');
  t.equal(calendar.active(), false);
});

t.test('system status opens and closes a dynamic window', async (t) => {
  const { calendar, clock, gauge } = calendarAt(Date.parse('2026-03-01T10:00:00Z'));
  t.teardown(() => calendar.close());
  const t0 = clock.now();
  calendar.noteSystemStatus(0, 'normal', t0);
  t.equal(calendar.reasonAt(t0), null);
  calendar.noteSystemStatus(1, 'system_maintenance', t0 + 60_000);
  calendar.noteSystemStatus(1, 'system_maintenance', t0 + 120_000); // still in maintenance: same window
  t.equal(calendar.windows().filter((w) => w.source === 'system_status').length, 1);
  clock.set(t0 + 150_000);
  t.equal(calendar.reasonAt(t0 + 150_000), STATUS_REASON);
  t.equal(calendar.active(), true);
  t.equal(await gauge(), 1);
  t.equal(calendar.reasonFor(t0 + 10_000, null), STATUS_REASON, 'an open gap that ran into it');
  calendar.noteSystemStatus(0, 'normal', t0 + 600_000);
  t.equal(calendar.reasonAt(t0 + 600_000), null);
  t.equal(calendar.reasonFor(t0 + 500_000, t0 + 700_000), STATUS_REASON, 'overlap with the closed window');
  t.equal(calendar.reasonFor(t0 + 10_000, t0 + 50_000), null, 'before it');
  clock.set(t0 + 700_000);
  t.equal(calendar.active(), false);
  t.equal(await gauge(), 0);
});

t.test('serverShutdown: a short window; events close together extend one window', async (t) => {
  const { calendar, clock, gauge } = calendarAt(Date.parse('2026-05-10T12:00:00Z'));
  t.teardown(() => calendar.close());
  const at = clock.now();
  calendar.noteServerShutdown(at);
  calendar.noteServerShutdown(at + 500); // the next connection's event
  calendar.noteServerShutdown(at + 900);
  const w = calendar.windows().filter((x) => x.source === 'server_shutdown');
  t.equal(w.length, 1);
  t.same(w[0], { start: at, end: at + 60_900, reason: 'serverShutdown', source: 'server_shutdown' });
  t.equal(await gauge(), 1);
  t.equal(calendar.reasonFor(at + 2_000, at + 5_000), 'serverShutdown', 'the reconnect right after');
  t.equal(calendar.reasonFor(at - 10_000, at - 5_000), null);
  clock.advance(61_000);
  t.equal(await gauge(), 0, 'over after 60 s');
  t.equal(calendar.reasonFor(at + 70_000, at + 80_000), null);
});

/** A stand-in for api.binance.com on loopback. */
async function statusServer(t: { teardown(fn: () => unknown): void }, handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(req.url ?? '');
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise((r) => server.close(r));
  });
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

function capturingLogger() {
  const logs: Array<{ level: string; msg: string }> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) logs.push(JSON.parse(l) as { level: string; msg: string });
      cb();
    },
  });
  return { logger: createLogger('debug', stream), logs };
}

t.test('SystemStatusPoller against a local server: status, errors, timeouts', async (t) => {
  let reply: { code: number; body: string; delayMs?: number } = { code: 200, body: '{"status":0,"msg":"normal"}' };
  const { base, requests } = await statusServer(t, (_req, res) => {
    const r = reply;
    const send = () => {
      res.writeHead(r.code, { 'content-type': 'application/json', 'retry-after': '120' });
      res.end(r.body);
    };
    if (r.delayMs) setTimeout(send, r.delayMs);
    else send();
  });
  const { calendar } = calendarAt(Date.now(), []);
  t.teardown(() => calendar.close());
  const { logger, logs } = capturingLogger();
  const poller = new SystemStatusPoller({ parse: binanceStatus, restBaseUrl: base, path: '/sapi/v1/system/status', intervalMs: 60_000, calendar, logger, timeoutMs: 200 });

  t.equal(await poller.pollOnce(), 60_000);
  t.same(requests, ['/sapi/v1/system/status']);
  t.equal(calendar.reasonAt(Date.now()), null);

  reply = { code: 200, body: '{"status":1,"msg":"system_maintenance"}' };
  await poller.pollOnce();
  t.equal(calendar.reasonAt(Date.now()), STATUS_REASON);

  // Failures leave the state alone.
  reply = { code: 500, body: 'oops' };
  await poller.pollOnce();
  reply = { code: 200, body: '<html>' };
  await poller.pollOnce();
  reply = { code: 200, body: '{"status":1}', delayMs: 1_000 };
  const t0 = Date.now();
  await poller.pollOnce();
  t.ok(Date.now() - t0 < 900, 'timed out');
  t.equal(calendar.reasonAt(Date.now()), STATUS_REASON, 'still in maintenance after three failed polls');
  t.equal(logs.filter((l) => l.level === 'warn').length, 3, 'each failure logged');

  reply = { code: 429, body: '{"code":-1003}' };
  t.equal(await poller.pollOnce(), 120_000, 'Retry-After stretches the next poll');

  reply = { code: 200, body: '{"status":0,"msg":"normal"}' };
  await poller.pollOnce();
  t.equal(calendar.reasonAt(Date.now()), null, 'normal again');
});

t.test('SystemStatusPoller start() polls at the interval, one at a time; stop() stops', async (t) => {
  const { base, requests } = await statusServer(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"status":0,"msg":"normal"}');
  });
  const { calendar } = calendarAt(Date.now(), []);
  t.teardown(() => calendar.close());
  const poller = new SystemStatusPoller({ parse: binanceStatus, restBaseUrl: base, path: '/sapi/v1/system/status', intervalMs: 20, calendar, logger: silentLogger() });
  poller.start();
  poller.start();
  await new Promise((r) => setTimeout(r, 150));
  poller.stop();
  // A poll sent just before stop() may reach the server a moment later (a loaded machine): let it land.
  await new Promise((r) => setTimeout(r, 40));
  const n = requests.length;
  t.ok(n >= 2 && n <= 10, `${n} polls in 150 ms at 20 ms`);
  await new Promise((r) => setTimeout(r, 80));
  t.equal(requests.length, n, 'no poll after stop()');
});

t.test('SystemStatusPoller uses an injected fetch; a rejected fetch is logged, not thrown', async (t) => {
  const { calendar } = calendarAt(Date.now(), []);
  t.teardown(() => calendar.close());
  const { logger, logs } = capturingLogger();
  let fail = true;
  const poller = new SystemStatusPoller({
    parse: binanceStatus,
    restBaseUrl: 'https://api.binance.com',
    path: '/sapi/v1/system/status',
    intervalMs: 1000,
    calendar,
    logger,
    fetch: async (url) => {
      t.equal(url, 'https://api.binance.com/sapi/v1/system/status');
      if (fail) throw Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' });
      return { status: 200, body: '{"status":1,"msg":"system_maintenance"}' };
    },
  });
  await poller.pollOnce();
  t.equal(logs.filter((l) => l.level === 'warn').length, 1);
  fail = false;
  await poller.pollOnce();
  t.equal(calendar.reasonAt(Date.now()), STATUS_REASON);
});
