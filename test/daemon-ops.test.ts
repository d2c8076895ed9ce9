import t from 'tap';
import { externalTool, run } from './metrics-tool.js';
import { startStack, until } from './helpers/stack.js';

const promtool = externalTool('promtool', 'apt-get install prometheus');

t.test('/readyz: 503 within staleAfterMs + 2 s of a stalled connection, 200 again after the reconnect', async (t) => {
  const staleAfterMs = 2000;
  const { sim, daemon } = await startStack(t, {
    sim: { eventsPerSecond: 10, tickMs: 50 },
    config: { symbols: ['BTCUSDT', 'ETHUSDT'], streams: ['trade', 'ticker'], connection: { staleAfterMs }, health: { silentAfterMs: 1500 } },
  });
  const readyz = async () => {
    const res = await fetch(`${daemon.http!.url}/readyz`);
    return { status: res.status, body: (await res.json()) as { reasons: string[] } };
  };
  t.ok(await until(async () => (await readyz()).status === 200, 8000), 'ready once connected');
  sim.stall();
  const stalledAt = Date.now();
  t.ok(await until(async () => (await readyz()).status === 503, staleAfterMs + 2000, 50), '503 after the stall');
  const after = Date.now() - stalledAt;
  t.ok(after <= staleAfterMs + 2000, `503 ${after} ms after the stall`);
  const { body } = await readyz();
  t.ok(body.reasons.length > 0, `with a reason: ${body.reasons[0]}`);
  t.ok(await until(async () => (await readyz()).status === 200, 10_000, 50), '200 again after the reconnect');
  t.ok(sim.totalConnections >= 2, 'it was a new connection');
});

t.test('a live scrape of the running daemon passes promtool check metrics and carries the documented metrics', promtool.testOpts, async (t) => {
  const { sim, daemon } = await startStack(t, {
    sim: { eventsPerSecond: 10, tickMs: 50 },
    config: { symbols: ['BTCUSDT'], streams: ['trade', 'bookTicker', 'depth@100ms'] },
  });
  await until(() => daemon.router.stream('btcusdt@trade')!.received > 5, 5000);
  sim.dropAll();
  await until(() => daemon.supervisor.workers[0]!.state === 'open' && sim.totalConnections === 2, 5000);
  // Every stream delivers again on the new connection: the drop's gaps are closed and counted.
  t.ok(await until(() => [...daemon.router.names].every((n) => daemon.router.stream(n)!.received > 0 && !daemon.router.stream(n)!.gapOpen), 5000), 'every stream back');
  // The age gauge is set by the supervisor's once-a-second pass: its first value, awaited.
  t.ok(await until(async () => (await daemon.metrics.lastMessageAge.get()).values.length > 0, 5000), 'the message age measured');
  const body = await (await fetch(`${daemon.http!.url}/metrics`)).text();
  for (const name of [
    'feedkeeper_connections_open',
    'feedkeeper_streams_subscribed',
    'feedkeeper_messages_received_total',
    'feedkeeper_reconnects_total',
    'feedkeeper_connection_attempts_total',
    'feedkeeper_connection_attempt_budget_remaining',
    'feedkeeper_last_message_age_seconds',
    'feedkeeper_event_lag_seconds_bucket',
    'feedkeeper_recorder_dropped_total',
    'feedkeeper_gaps_total',
    'feedkeeper_gap_seconds_total',
    'feedkeeper_missed_messages_total',
    'feedkeeper_gaps_open',
    'feedkeeper_maintenance_active',
    'process_resident_memory_bytes',
    'process_cpu_seconds_total',
  ]) {
    t.match(body, new RegExp(`^${name}`, 'm'), name);
  }
  t.match(body, /^feedkeeper_connections_open\{venue="binance-spot"\} 1$/m, 'one connection open');
  t.match(body, /^feedkeeper_streams_subscribed\{venue="binance-spot"\} 3$/m, 'three streams subscribed');
  t.match(body, /^feedkeeper_reconnects_total\{reason="server_close",venue="binance-spot"\} 1$/m, 'the drop counted');
  t.match(body, /^feedkeeper_gaps_total\{cause="server_close",maintenance="false",venue="binance-spot"\} [1-3]$/m, 'its gaps counted');
  const tool = promtool.need(t);
  if (tool === undefined) return;
  const r = run(tool, ['check', 'metrics'], { input: body });
  t.equal(r.stdout + r.stderr, '', 'promtool prints nothing');
  t.equal(r.status, 0, 'promtool exits 0');
});
