export { Recorder, recordingPath } from './recorder.js';
export type { DropReason, RecorderOptions, RecorderStats, RecordingPosition } from './recorder.js';
