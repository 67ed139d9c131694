/** @module The client library for Brigade's key-value store (see `client.ts`). */
export { BrigadeClient, connect, Keyspaces } from "./client.js";
export { KeyValue, type KvJson, type Value, type ValueEncoding } from "./codec.js";
export { clientDefaults } from "./connection.js";
export { CompareFailedError, ServerError } from "./errors.js";
export { Keyspace, LeaseKeeper, Leases } from "./keyspace.js";
export { type SseEvent, SseParser } from "./sse.js";
export type {
  CallOptions,
  ConnectOptions,
  Consistency,
  DeleteOptions,
  DeleteResult,
  GetOptions,
  KeyspaceInfo,
  KeyspaceSpec,
  Lease,
  LeaseInfo,
  LeaseRef,
  PutOptions,
  PutResult,
  ScanOptions,
  ScanPage,
  ScanPageOptions,
  ScanRange,
  ShardInfo,
  TxnCompare,
  TxnOp,
  TxnOpResult,
  TxnRequest,
  TxnResult,
  WatchEvent,
  WatchOptions,
  WatchTarget,
  WriteOptions,
} from "./types.js";
export { Watch } from "./watch.js";
