import t from 'tap';
import { relayMetrics } from '../src/relay/metrics.js';
import { natsMetrics } from '../src/sinks/nats/metrics.js';
import { recoveryMetrics } from '../src/recovery/metrics.js';
import { booksMetrics } from '../src/books/manager.js';
import { silentLogger } from '../src/log.js';
import { METRIC_LABEL_VALUES } from '../src/metrics/labels.js';
import { createMetrics, type Metrics } from '../src/metrics/registry.js';
import { startHttpServer } from '../src/metrics/server.js';
import { scrapeLiveDaemon } from './metrics-scrape.js';
import { externalTool, run } from './metrics-tool.js';

/**
 * Scrapes a live /metrics on loopback and lints it with `promtool check metrics`, the parser and
 * linter Prometheus itself ships: once with every metric touched, once from the running daemon.
 * No finding is allowed, prom-client's names included: promtool prints nothing and exits 0.
 */

/** prom-client's default process and runtime metrics: their standard names, no prefix. */
const STANDARD = /^(process|nodejs)_/;

/** One realistic hour of a daemon's life, so that every metric has a sample. */
function touchEverything(m: Metrics): void {
  m.connectionsPlanned.set(3);
  m.connectionsOpen.set(3);
  m.streamsSubscribed.set(2100);
  m.messagesReceived.inc(184_223);
  m.messagesDuplicate.inc(41);
  m.framesMalformed.inc();
  for (const state of ['connecting', 'open', 'rotating', 'closed'] as const) m.connectionStateChanges.inc({ state }, 3);
  m.connectionStateChanges.inc({ state: 'backoff' });
  m.reconnects.inc({ reason: 'lifetime' }, 3);
  m.reconnects.inc({ reason: 'server_shutdown' });
  m.connectionAttempts.inc({ outcome: 'ok' }, 7);
  m.connectionAttempts.inc({ outcome: 'http_429' });
  m.attemptBudgetRemaining.set(293);
  m.outgoingMessages.inc({ kind: 'pong' }, 540);
  m.outgoingMessages.inc({ kind: 'subscribe' }, 9);
  m.lastMessageAge.set(0.35);
  for (const lag of [0.004, 0.012, 0.03, 0.2, 1.4]) m.eventLag.observe(lag);
  m.recorderWritten.inc(184_182);
  m.recorderDropped.inc({ reason: 'buffer_full' }, 12);
  m.recorderWriteErrors.inc();
  m.recorderBufferBytes.set(65_536);
  m.recorderBufferLimit.set(64 * 1024 * 1024);
  m.recorderReadsHeld.set(1);
  m.recorderReadHolds.inc(3);
  m.recorderReadHoldSeconds.inc({ end: 'drained' }, 0.42);
  m.recorderCompressedFiles.inc();
  m.recorderCompressInBytes.inc(1_048_576);
  m.recorderCompressOutBytes.inc(155_000);
  m.recorderCompressSeconds.inc(0.024);
  m.recorderCompressFailures.inc();
  m.gaps.inc({ cause: 'server_close', maintenance: 'true' });
  m.gapSeconds.inc({ cause: 'server_close', maintenance: 'true' }, 2.75);
  m.missedMessages.inc({ maintenance: 'true' }, 118);
  m.gapsOpen.set(1);
  m.maintenanceActive.set(1);
  m.ledgerWriteErrors.inc();
  m.listenKeyKeepalives.inc({ outcome: 'ok' }, 2);
  m.listenKeyAge.set(1800);
  m.listenKeyRenewals.inc();
  m.restRequests.inc({ status: '2xx' }, 14);
  m.restRequests.inc({ status: '429' });
  m.restUsedWeight.set(1210);
  m.restPaused.set(1); // the 429 above
  m.sinkDropped.inc({ sink: 'relay' }, 2);
  m.universeSymbols.set({ venue: 'binance-spot' }, 600);
  m.universeChanges.inc({ venue: 'binance-spot', change: 'added' }, 3);
  m.universeRefreshFailures.inc({ venue: 'binance-spot' });
  m.streamSilences.inc({ venue: 'binance-spot' });
  m.reloads.inc({ result: 'applied' });
  const relay = relayMetrics(m.registry);
  relay.sources.add({ clientCount: () => 3, streamCount: () => 7, maxBufferedBytes: () => 4096 });
  relay.hot.messages += 1200;
  relay.hot.bytes += 240_000;
  relay.gapNotices.inc(2);
  relay.clientsDropped.inc({ reason: 'slow' });
  relay.refused.inc({ reason: 'not_allowed' });
  relay.controlRequests.inc({ method: 'SUBSCRIBE', outcome: 'ok' }, 4);
  const nats = natsMetrics(m.registry);
  nats.sources.add({ connected: () => true, pendingMessages: () => 12, pendingBytes: () => 2400, inFlight: () => 8, bufferLimitBytes: () => 64 * 1024 * 1024 });
  nats.hot.acked += 5000;
  nats.hot.duplicates += 2400;
  nats.publishFailures.inc(3);
  nats.gapEntriesDropped.inc();
  const backfill = recoveryMetrics(m.registry);
  backfill.requests.inc({ venue: 'binance-spot', status: '2xx' }, 9);
  backfill.weight.inc({ venue: 'binance-spot' }, 36);
  backfill.recovered.inc({ venue: 'binance-spot' }, 8000);
  backfill.ranges.inc({ venue: 'binance-spot', outcome: 'complete' }, 3);
  backfill.open.set({ venue: 'binance-spot' }, 2);
  const books = booksMetrics(m.registry);
  books.resyncs.inc({ venue: 'binance-spot', reason: 'gap' });
  books.synced.set({ venue: 'binance-spot' }, 20);
  books.snapshots.inc({ venue: 'binance-spot' }, 21);
}

const promtool = externalTool('promtool', 'apt-get install prometheus');

t.test('a scrape of /metrics passes promtool check metrics', promtool.testOpts, async (t) => {
  const path = promtool.need(t);
  if (path === undefined) return;
  const metrics = createMetrics();
  touchEverything(metrics);
  const server = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    metrics,
    health: { readiness: () => ({ ready: true, reasons: [], connections: { planned: 3, open: 3 } }) },
    logger: silentLogger(),
  });
  t.teardown(() => server.close());

  const res = await fetch(`${server.url}/metrics`);
  t.equal(res.status, 200);
  const body = await res.text();

  // Every metric of ours was touched (a non-zero sample), so the lint saw real series of each; a
  // metric added to the registry without a line in touchEverything() fails here.
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    if (!m.name.startsWith('feedkeeper_')) {
      t.match(m.name, STANDARD, `${m.name}: not ours, so one of prom-client's standard names`);
      continue; // prom-client's, some only after a GC
    }
    t.ok(m.values.some((v) => v.value !== 0), `${m.name} was touched`);
    const bounded = (METRIC_LABEL_VALUES as Record<string, Record<string, readonly string[]>>)[m.name] ?? {};
    for (const v of m.values) {
      for (const [label, value] of Object.entries(v.labels)) {
        if (label === 'le') continue;
        t.ok(bounded[label]?.includes(String(value)), `${m.name}{${label}="${value}"} is a documented value`);
      }
    }
    t.match(body, new RegExp(`^# TYPE ${m.name} ${m.type}$`, 'm'), `${m.name} is exposed`);
  }

  const r = run(path, ['check', 'metrics'], { input: body });
  t.equal(`${r.stdout}${r.stderr}`, '', 'promtool check metrics prints nothing');
  t.equal(r.status, 0, 'promtool check metrics exits 0');
});

t.test('a live scrape of the running daemon: standard process names, and promtool prints nothing', promtool.testOpts, async (t) => {
  const path = promtool.need(t);
  if (path === undefined) return;
  const body = await scrapeLiveDaemon(t);
  for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'process_open_fds', 'nodejs_eventloop_lag_seconds', 'nodejs_eventloop_lag_p99_seconds', 'nodejs_heap_size_used_bytes']) {
    t.match(body, new RegExp(`^# TYPE ${name} `, 'm'), `${name} declared under its standard name`);
    t.match(body, new RegExp(`^${name} \\d`, 'm'), `${name} has a sample`);
  }
  t.notMatch(body, /^(# (TYPE|HELP) )?feedkeeper_(process|nodejs)_/m, 'no prefixed copy of a standard metric');
  t.notMatch(body, /^(# (TYPE|HELP) )?nodejs_active_\w+_total/m, "prom-client's *_total gauges left out");
  t.match(body, /^nodejs_active_handles\{type="/m, 'the per-type handle gauge stays (its sum is the total)');
  const families = [...body.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!);
  t.same(families.filter((n) => !n.startsWith('feedkeeper_') && !STANDARD.test(n)), [], 'every family is ours or a standard one');

  const r = run(path, ['check', 'metrics'], { input: body });
  t.equal(`${r.stdout}${r.stderr}`, '', 'promtool check metrics prints nothing');
  t.equal(r.status, 0, 'promtool check metrics exits 0');
});
