export { checkInvariant, formatInvariant, type InvariantInput, type InvariantResult, type StreamInvariant, type Discrepancy, type DiscrepancyKind, type RecordedMessage } from './invariant.js';
export { readRecording } from './recording.js';
export { checkRun, type RunCheck, type SentSource } from './check.js';
export { Rig, cliCommand, type RigOptions, type ChildDaemon } from './rig.js';
export { scenarios, getScenario, type Scenario, type RehearsalCheck } from './scenarios.js';
export { rehearse, formatRehearsal, type RehearseOptions, type RehearsalResult } from './rehearse.js';
