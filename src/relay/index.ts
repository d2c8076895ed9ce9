export { RelayServer } from './server.js';
export { RelayRefusal, refusalOf, type RelayUpstream, type RelayServerOptions, type RelayStats, type RelayClientStats, type RelaySink } from './types.js';
export { relayMetrics, RELAY_LABEL_VALUES, DROP_REASONS, REFUSE_REASONS, CONTROL_OUTCOMES, type RelayMetrics } from './metrics.js';
export { parseControl, resultReply, errorReply, isValidId, METHODS, PROPERTIES, type ControlRequest, type Id } from './protocol.js';
export { parseRelayPath, AddressAllowList, type RelayPath } from './paths.js';
