import t from 'tap';
import { startStack, readRecording, recordedIds, until, ledgerEntries, within } from './helpers/stack.js';

const symbols = (n: number, prefix = 'S'): string[] => Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(4, '0')}USDT`);

t.test('2,500 streams: 3 connections, none over 1024 streams or the message rate, every stream delivers within 10 s', async (t) => {
  const { sim, daemon } = await startStack(t, {
    sim: { eventsPerSecond: 1, tickMs: 200 },
    config: { symbols: symbols(625), streams: ['trade', 'aggTrade', 'depth@100ms', 'bookTicker'], limits: { streamsPerSubscribe: 200 } },
  });
  const started = Date.now();
  const names = [...daemon.router.names];
  t.equal(names.length, 2500);
  const all = await until(() => names.every((n) => daemon.router.stream(n)!.received > 0), 10_000, 100);
  t.ok(all, `every stream delivered within 10 s (took ${Date.now() - started} ms)`);
  const conns = sim.connections();
  t.equal(conns.length, 3, 'three connections');
  t.ok(conns.every((c) => c.streams.size <= 1024), `streams per connection: ${conns.map((c) => c.streams.size).join(', ')}`);
  t.equal(conns.reduce((n, c) => n + c.streams.size, 0), 2500);
  t.same(sim.violations, [], 'the exchange saw no limit broken');
});

// Both with the sockets read on the main thread and on a read thread (connection.readThreads).
for (const readThreads of [0, 1]) {
  const how = readThreads === 0 ? '' : ' (sockets on a read thread)';
  t.test(`a lifetime rotation and a serverShutdown lose nothing and double nothing${how}`, async (t) => {
    const { sim, daemon, config } = await startStack(t, {
      sim: { eventsPerSecond: 20, tickMs: 50 },
      config: {
        symbols: ['BTCUSDT', 'ETHUSDT'],
        streams: ['trade', 'aggTrade', 'bookTicker'],
        connection: { maxLifetimeMs: 3500, rotateBeforeMs: 2000, handshakeTimeoutMs: 1000, switchoverTimeoutMs: 1000, readThreads },
      },
    });
    await until(() => daemon.router.stream('btcusdt@trade')!.received > 0, 5000);
    // The lifetime rotation happens 1.5 s after the open: awaited, not slept for.
    t.ok(await until(() => sim.totalConnections >= 2 && sim.connections().length === 1, 5000), `rotated (${sim.totalConnections} connections so far), the old one closed`);
    const beforeShutdown = sim.totalConnections;
    t.equal(sim.serverShutdown(), 1, 'serverShutdown sent');
    await until(() => sim.totalConnections > beforeShutdown, 5000);
    // The replacement delivers for a while before the stop: 20 more trades of one stream, and enough
    // of each stream in all for the checks below.
    const after = daemon.router.stream('btcusdt@trade')!.received;
    const enough = (): boolean => daemon.router.stream('btcusdt@trade')!.received >= Math.max(after + 20, 70) && daemon.router.stream('ethusdt@aggTrade')!.received >= 70;
    await until(enough, 6000);
    await daemon.stop('test');
    const lines = readRecording(config.recorder.dir);
    for (const [stream, field] of [
      ['btcusdt@trade', 't'],
      ['ethusdt@aggTrade', 'a'],
    ] as const) {
      const got = recordedIds(lines, stream, field);
      t.ok(got.length > 50, `${stream}: ${got.length} recorded`);
      t.equal(new Set(got).size, got.length, `${stream}: no ID twice`);
      const sent = sim.sentIds(stream);
      const expect = sent.slice(sent.indexOf(got[0]!), sent.indexOf(got[got.length - 1]!) + 1);
      t.same(got, expect, `${stream}: every ID the exchange sent between the first and last recorded, in order`);
    }
    const gaps = (await ledgerEntries(config)).filter((g) => g.cause !== 'shutdown');
    t.same(gaps, [], 'no gap for a switch-over that lost nothing');
    t.same(sim.violations, []);
  });

  t.test(`a silent stall is caught within staleAfterMs and the connection replaced${how}`, async (t) => {
    const { sim, daemon } = await startStack(t, {
      sim: { eventsPerSecond: 10, tickMs: 50 },
      config: { symbols: ['BTCUSDT'], streams: ['trade'], connection: { staleAfterMs: 1500, readThreads } },
    });
    t.equal(daemon.feeds[0]!.holdReadsMs, 750, 'the read hold is at most half of staleAfterMs');
    await until(() => daemon.router.stream('btcusdt@trade')!.received > 0, 5000);
    const lastBefore = daemon.supervisor.workers[0]!.session!.lastFrameAt;
    sim.stall();
    const stalledAt = Date.now();
    const replaced = await until(() => sim.totalConnections >= 2, 6000);
    t.ok(replaced, 'a new connection was opened');
    const stale = (await daemon.metrics.reconnects.get()).values.find((v) => v.labels.reason === 'stale');
    t.equal(stale?.value, 1, 'counted as a stale reconnect');
    const detectedAfter = Date.now() - lastBefore;
    t.ok(detectedAfter < 1500 + 2500, `terminated ${Date.now() - stalledAt} ms after the stall (frames stopped ${detectedAfter} ms ago)`);
    await until(() => daemon.supervisor.readiness().ready, 5000);
    t.ok(daemon.supervisor.readiness().ready, 'ready again after the reconnect');
  });
}

t.test('a mass drop of 20 connections reconnects without one attempt over the budget', async (t) => {
  const budget = 50;
  const { sim, daemon } = await startStack(t, {
    sim: { eventsPerSecond: 2, limits: { connectionAttempts: budget } },
    config: { symbols: symbols(20, 'M'), streams: ['trade'], limits: { streamsPerConnection: 1, connectionAttempts: budget }, connection: { backoff: { initialMs: 50, maxMs: 500 } } },
  });
  const open = () => daemon.supervisor.workers.filter((w) => w.state === 'open').length;
  t.ok(await until(() => open() === 20, 10_000), '20 connections open');
  t.equal(sim.dropAll({ abrupt: true }), 20, 'all 20 dropped at once');
  t.ok(await until(() => open() === 20 && sim.totalConnections === 40 && sim.connections().length === 20, 10_000), 'all 20 back (40 attempts of 50)');
  t.equal(sim.dropAll(), 20, 'dropped again');
  // 10 attempts left in the window: 10 come back, the other 10 wait for the window to roll.
  // Back on both sides: the exchange has them, and the daemon has them open (subscribed), not still confirming.
  t.ok(await until(() => sim.totalConnections === 50 && sim.connections().length === 10 && open() === 10, 10_000), '10 back');
  // The other 10 end their backoff and ask the budget: awaited, each worker's `connecting` status.
  const down = daemon.supervisor.workers.filter((w) => w.state !== 'open');
  t.equal(down.length, 10);
  await within(Promise.all(down.map((w) => (w.state === 'connecting' ? null : w.nextStatus('connecting')))), 5000);
  t.equal(daemon.supervisor.budget.waiting, 10, 'the other 10 wait on the budget instead of storming');
  t.equal(sim.connections().length, 10);
  t.equal(sim.upgradeAttempts.length, budget, `exactly ${budget} upgrade attempts`);
  t.same(sim.violations, [], 'never over the attempt budget');
  t.equal((await daemon.metrics.attemptBudgetRemaining.get()).values[0]!.value, 0);
  t.equal(daemon.supervisor.workers.filter((w) => w.state === 'connecting').length, 10, 'the rest are queued on the budget');
});

t.test('1024 streams on one connection with pings every 250 ms: the outgoing rate is never over the limit', async (t) => {
  const { sim, daemon } = await startStack(t, {
    sim: { eventsPerSecond: 0.2, pingIntervalMs: 250 },
    config: { symbols: symbols(512, 'R'), streams: ['trade', 'bookTicker'], limits: { streamsPerSubscribe: 100 } },
  });
  t.ok(await until(() => daemon.supervisor.workers[0]!.state === 'open', 15_000), 'subscribed (1 batch in the URL, 10 SUBSCRIBE messages, pongs meanwhile)');
  t.equal(sim.connections()[0]!.streams.size, 1024);
  // Two more pongs once open, awaited: over a second of pings every 250 ms, at most one pong per window.
  const pongs = async (): Promise<number> => (await daemon.metrics.outgoingMessages.get()).values.find((v) => v.labels.kind === 'pong')?.value ?? 0;
  const before = await pongs();
  t.ok(await until(async () => (await pongs()) >= before + 2, 5000), 'pongs were sent (at most one per window)');
  t.same(sim.violations, [], 'no message-rate violation');
});

t.test('429 with Retry-After on the upgrade is honoured, for every connection', async (t) => {
  const { sim, daemon } = await startStack(t, {
    sim: { eventsPerSecond: 2 },
    config: { symbols: ['AAAUSDT', 'BBBUSDT'], streams: ['trade'], limits: { streamsPerConnection: 1 }, connection: { backoff: { initialMs: 10, maxMs: 100 } } },
    startDaemon: false,
  });
  // Both first attempts are refused; the limit is per IP, so neither worker may try again before
  // Retry-After has passed, even though their own backoff would allow it after 10 ms.
  sim.refuseUpgrades(2, 429, 2);
  await daemon.start();
  t.ok(await until(() => sim.connections().length === 2, 8000), 'both connected in the end');
  const attempts = sim.upgradeAttempts;
  t.same(attempts.slice(0, 2).map((a) => a.status), [429, 429]);
  const gap = Math.min(...attempts.slice(2).map((a) => a.at)) - attempts[1]!.at;
  t.ok(gap >= 1900, `no attempt for ${gap} ms after the 429 (Retry-After: 2)`);
  t.equal(attempts.length, 4, 'one more attempt each, no retry storm');
});

t.test('IDs skipped on a live connection are a sequence gap with the exact range', async (t) => {
  const { sim, daemon, config } = await startStack(t, {
    sim: { eventsPerSecond: 20, tickMs: 50 },
    config: { symbols: ['BTCUSDT'], streams: ['trade'] },
  });
  await until(() => daemon.router.stream('btcusdt@trade')!.received > 3, 5000);
  sim.skip('btcusdt@trade', 5);
  await until(() => daemon.router.stream('btcusdt@trade')!.received > 15, 5000);
  await daemon.ledger.flush();
  const gaps = await ledgerEntries(config);
  t.equal(gaps.length, 1);
  const skipped = sim.skippedIds('btcusdt@trade');
  t.same(gaps[0]!.missed, { field: 't', from: skipped[0], to: skipped[4], count: 5 });
  t.equal(gaps[0]!.cause, 'sequence');
});

t.test('a restart does not get a fresh attempt budget: the previous run’s attempts still count', async (t) => {
  const { mkdtempSync, rmSync, existsSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'feedkeeper-budget-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = { symbols: ['AAAUSDT', 'BBBUSDT', 'CCCUSDT'], streams: ['trade'], limits: { streamsPerConnection: 1, connectionAttempts: 5 } };
  const first = await startStack(t, { dir, sim: { eventsPerSecond: 2 }, config });
  t.ok(await until(() => first.sim.connections().length === 3, 5000), 'first run: 3 connections (3 of 5 attempts)');
  await first.daemon.stop('restart');
  await first.sim.close();
  t.ok(existsSync(join(dir, 'state.attempts.json')), 'attempts saved next to the checkpoint');

  const second = await startStack(t, { dir, sim: { eventsPerSecond: 2 }, config });
  t.ok(await until(() => second.sim.connections().length === 2, 5000), 'second run: 2 connect');
  t.ok(await until(() => second.daemon.supervisor.budget.waiting === 1, 5000), 'the third asked the budget and waits');
  // The simulator counts a connection at its upgrade; the worker is open once subscribed, a moment later.
  t.ok(await until(() => second.daemon.supervisor.workers.filter((w) => w.state === 'open').length === 2, 5000), 'the two are open');
  t.equal(second.sim.upgradeAttempts.length, 2, 'and the third waits for the window: 5 attempts in all');
  t.equal(second.daemon.supervisor.workers.filter((w) => w.state === 'connecting').length, 1);
  t.equal(second.daemon.supervisor.budget.remaining(), 0);
});
