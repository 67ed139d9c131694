/**
 * @module The storage layer's public surface: the node's write-ahead log, snapshot files and
 * their typed errors. Imports only `lib/`; the Raft runtime (above) encodes what goes in.
 */
export { crc32c } from "./crc32c.js";
export {
  deleteSnapshot,
  readSnapshot,
  type SnapshotConfig,
  snapshotDefaults,
  writeSnapshotAtomically,
} from "./snapshot.js";
export { SnapshotCorruptError, WalCorruptError } from "./storage-errors.js";
export {
  type AppendResult,
  validateWalConfig,
  type WalConfig,
  type WalRecoveryReport,
  type WalSegmentInfo,
  type WalStats,
  type WalSyncMethod,
  WriteAheadLog,
  walDefaults,
} from "./wal.js";
export {
  type WalRecord,
  type WalRecordInput,
  type WalRecordType,
  walGroupIdMax,
  walRecordHeaderBytes,
  walRecordTypes,
} from "./wal-record.js";
