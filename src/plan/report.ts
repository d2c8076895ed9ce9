import type { Plan, PlannedConnection, PlanUsage } from './planner.js';

/** The plan as plain JSON (the venue by name): what `feedkeeper plan --json` prints. */
export interface PlanJSON {
  venue: string;
  /** This daemon's shard: index of count, its symbols of the configured total. */
  shard: Plan['shard'];
  totalStreams: number;
  symbolsPerConnection: number;
  connections: PlannedConnection[];
  usage: PlanUsage;
  /** The universe's filters and refresh cost, where symbols is a universe (null for a list). */
  universe: Plan['universe'];
}

export function planToJSON(plan: Plan): PlanJSON {
  return {
    venue: plan.venue.name,
    shard: plan.shard,
    totalStreams: plan.totalStreams,
    symbolsPerConnection: plan.symbolsPerConnection,
    connections: plan.connections,
    usage: plan.usage,
    universe: plan.universe,
  };
}

/** A readable table: one line per connection, then the share of each limit the plan uses. */
export function formatPlan(plan: Plan): string {
  const { usage, connections } = plan;
  // A symbol appears once per route (USD-M: /public and /market connections).
  const symbols = new Set(connections.flatMap((c) => c.symbols)).size;
  const types = symbols === 0 ? 0 : plan.totalStreams / symbols;
  const lines: string[] = [];
  lines.push(
    `${plan.venue.name}: ${symbols} symbols × ${types} stream types = ${plan.totalStreams} streams on ${connections.length} connection${connections.length === 1 ? '' : 's'}`,
    '',
  );
  if (plan.universe !== null) {
    const u = plan.universe;
    const filters = [
      `status ${u.spec.status}`,
      u.spec.quoteAssets.length > 0 ? `quote ${u.spec.quoteAssets.join('|')}` : '',
      u.spec.permissions.length > 0 ? `permission ${u.spec.permissions.join('|')}` : '',
      u.spec.contractTypes.length > 0 ? `contract ${u.spec.contractTypes.join('|')}` : '',
      u.spec.include.length > 0 ? `include ${u.spec.include.length}` : '',
      u.spec.exclude.length > 0 ? `exclude ${u.spec.exclude.length}` : '',
      u.spec.max > 0 ? `max ${u.spec.max}` : '',
    ].filter((f) => f !== '');
    lines.push(
      `universe: ${plan.shard.totalSymbols} symbols from ${u.path} (${filters.join(', ')}); refreshed every ${u.refreshMs / 1000} s at weight ${u.weight} (${fmt(Math.round((u.weight * 60_000 * 100) / u.refreshMs) / 100)} weight per minute)`,
      '',
    );
  }
  if (plan.shard.count > 1) {
    const sh = plan.shard;
    lines.push(`shard ${sh.index} of ${sh.count}: ${sh.symbols} of ${sh.totalSymbols} symbols (the other ${sh.totalSymbols - sh.symbols} on the other shards; rendezvous hashing, docs/scale-out.md)`, '');
  }

  const rows = connections.map((c) => [
    c.id,
    c.path,
    String(c.streams.length),
    String(c.symbols.length),
    c.symbols.length === 1 ? c.symbols[0]! : `${c.symbols[0]} .. ${c.symbols[c.symbols.length - 1]}`,
  ]);
  lines.push(...table(['connection', 'path', 'streams', 'symbols', 'symbol range'], rows, [false, false, true, true, false]), '');

  const s = usage.streamsPerConnection;
  const a = usage.connectionAttempts;
  const sub = usage.subscribe;
  lines.push(
    'Limits used',
    ...table(
      ['limit', 'used', 'share'],
      [
        ['streams per connection (max)', `${s.max} of ${s.limit}`, `${fmt(s.maxPercent)}%`],
        ['streams per connection (mean)', `${fmt(Math.round(s.mean * 10) / 10)} of ${s.limit}`, `${fmt(s.meanPercent)}%`],
        [
          `connection attempts per ${a.windowMs / 1000} s`,
          `${a.connections} of ${a.budget}`,
          `${fmt(a.percent)}%`,
        ],
        [
          'SUBSCRIBE messages per connection',
          `${sub.messagesPerConnection} (${sub.streamsPerSubscribe} streams each)`,
          `${fmt(Math.round(sub.secondsPerConnection * 100) / 100)} s at ${sub.sendRatePerSecond}/s`,
        ],
        ...(sub.perHourLimit > 0
          ? [['subscribe requests per connection per hour', `${sub.messagesPerConnection} of ${sub.perHourLimit}`, `${fmt(sub.perHourPercent)}%`]]
          : []),
      ],
      [false, true, true],
    ),
    '',
    `A drop of every connection (maintenance) costs ${a.connections} of the ${a.budget} attempts one IP may make per ${a.windowMs / 1000} s; ` +
      `one message per second per connection is kept for pongs${plan.venue.clientPing === null ? '' : ' and pings'}.`,
  );
  return lines.join('\n') + '\n';
}

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(n < 10 ? 2 : 1).replace(/0+$/, '').replace(/\.$/, '');
}

function table(header: string[], rows: string[][], rightAlign: boolean[]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string =>
    '  ' + cells.map((c, i) => (rightAlign[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)];
}
