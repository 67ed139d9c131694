/**
 * @module Brigade's public library surface: run a node in-process, talk to it, and use the
 * building blocks (clocks, transport, protocol cores, simulator) directly.
 *
 * @example
 * ```ts
 * import { BrigadeNode, resolveNodeConfig } from "brigade";
 * const node = new BrigadeNode(resolveNodeConfig({ id: "n1", join: "127.0.0.1:7002" }));
 * await node.start();
 * node.membership.on("member-dead", (member) => console.log(`${member.id} died`));
 * node.discovery.register({ name: "web", port: 8080, check: () => true });
 * console.log(node.discovery.find("web", { tags: { version: "2" } }));
 * ```
 *
 * The key-value store's client: `const client = await connect({ nodes: ["127.0.0.1:7101"] })`,
 * then `client.keyspace("seats").put(key, value)` and so on (see `client/client.ts`).
 */
export {
  BrigadeClient,
  type CallOptions,
  CompareFailedError,
  type ConnectOptions,
  type Consistency,
  connect,
  type DeleteOptions,
  type DeleteResult,
  type GetOptions,
  Keyspace,
  type KeyspaceInfo,
  type KeyspaceSpec,
  Keyspaces,
  KeyValue,
  type KvJson,
  type Lease,
  type LeaseInfo,
  LeaseKeeper,
  type LeaseRef,
  Leases,
  type PutOptions,
  type PutResult,
  type ScanOptions,
  type ScanPage,
  type ScanPageOptions,
  ServerError,
  type ShardInfo,
  type TxnCompare,
  type TxnOp,
  type TxnOpResult,
  type TxnRequest,
  type TxnResult,
  type Value,
  Watch,
  type WatchEvent,
  type WatchOptions,
  type WatchTarget,
  type WriteOptions,
} from "./client/index.js";
export { compareHlc, type HlcTimestamp, HybridLogicalClock } from "./clocks/hlc.js";
export { LamportClock } from "./clocks/lamport.js";
export * as vectorClock from "./clocks/vector-clock.js";
export { type MembershipConfig, membershipProfiles } from "./core/membership/config.js";
export type { MemberRecord, MemberState, MembershipEvent } from "./core/membership/messages.js";
export { Swim } from "./core/membership/swim.js";
export type { CoreContext, CoreFactory, CoreOutput, ProtocolCore } from "./core/sans-io.js";
export { BrigadeError, type BrigadeErrorCode, isBrigadeError } from "./lib/errors.js";
export { type Prng, prngFromSeed } from "./lib/prng.js";
export { version } from "./lib/version.js";
export { type NodeConfig, resolveNodeConfig } from "./node/config.js";
export { Discovery, type ServiceDefinition, type ServiceInstance } from "./node/discovery.js";
export { MembershipDriver } from "./node/membership-driver.js";
export { BrigadeNode } from "./node/node.js";
export { Simulator } from "./sim/simulator.js";
export { FaultInjector, type LinkFault } from "./transport/faults.js";
export { TcpTransport } from "./transport/tcp-transport.js";
