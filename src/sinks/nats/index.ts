export { NatsSink, COLLECTOR_HEADER, type NatsSinkOptions, type NatsSinkConfig } from './sink.js';
export { natsMetrics } from './metrics.js';
export { messageSubject, gapSubject, token, streamSymbol } from './subjects.js';
export { gapId } from './identity.js';
