export { GapLedger, nodeLedgerIo, type GapLedgerOptions, type LedgerIo, type LedgerMetrics, type OpenGapInput, type CloseGapInput, type InstantGapInput } from './ledger.js';
export {
  MaintenanceCalendar,
  SystemStatusPoller,
  undiciStatusFetch,
  SERVER_SHUTDOWN_REASON,
  SYSTEM_STATUS_SUFFIX,
  type MaintenanceWindow,
  type MaintenanceSource,
  type MaintenanceCalendarOptions,
  type SystemStatusPollerOptions,
  type StatusFetch,
  type StatusResponse,
} from './maintenance.js';
export { missedBetween, missedAny, readKeys, type SequenceKeys } from './missed.js';
export {
  Checkpointer,
  recoverLastSeen,
  venueKeyOf,
  listRecordings,
  parseRecordedLine,
  parseCheckpoint,
  type CheckpointState,
  type StreamSeen,
  type KeyOf,
  type Recovered,
  type RecoverOptions,
} from './recovery.js';
export { resumeGaps, reconcileWithLedger, type ResumedGap, type ResumeOptions, type ReconcileOptions } from './resume.js';
export { readLedger, parseLedger, summarize, formatReport, formatDuration, parseTimeArg, gapsAnswer, type GapSummary, type GapTotals, type SummarizeOptions, type GapsQuery, type GapsAnswer } from './report.js';
export { GAP_CAUSES, isGapCause, entryLine, parseEntryLine, type GapCause, type GapEntry, type Missed } from './types.js';
