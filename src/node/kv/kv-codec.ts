/**
 * @module Validation and log encoding of a shard's commands (`KvCommand`). A command is
 * checked twice: by the service before it is proposed, so the client learns what is wrong
 * and nothing reaches the log, and by every replica when it decodes a log entry (an entry
 * that fails applies as a failed no-op, the same everywhere).
 *
 * The log form is a msgpack tuple led by the command type, e.g.
 * `["put", requestId, key, value, lease, compare | null]`: field names would be most of a
 * small put's bytes in the WAL. Compares are `[key, target, op, operand]`, transaction
 * operations `["put", key, value, lease]`, `["delete", key]` or `["get", key]`.
 */
import { pack, unpack } from "msgpackr";
import { BrigadeError } from "../../lib/errors.js";
import { type Compare, type KvCommand, kvLimits, type TxnOp } from "./kv-types.js";

/**
 * All values and value operands of one command together: one value's worth. A proposal is
 * at most 2 MiB (`proposalBytesMax`), which leaves room for the keys of a full transaction;
 * a larger command fails at the proposal with MessageTooLarge (413), writing nothing.
 */
export const commandValueBytesMax = kvLimits.valueBytesMax;

const compareTargets: ReadonlySet<string> = new Set([
  "value",
  "version",
  "createRevision",
  "modRevision",
  "lease",
]);
const compareOps: ReadonlySet<string> = new Set(["==", "!=", "<", ">"]);
/** Matches an unpaired UTF-16 surrogate: such a key has no UTF-8 form of its own. */
const loneSurrogate = /\p{Cs}/u;

function invalid(message: string): never {
  throw new BrigadeError("InvalidArgument", message);
}

/** Encodes a command for the log. Validate it first (`validateKvCommand`). */
export function encodeKvCommand(command: KvCommand): Uint8Array {
  // A copy: msgpackr returns a view into its shared output buffer, which grows to the size
  // of the largest thing packed (a shard's snapshot image, tens of MiB). A log entry that
  // is a view would keep that whole buffer alive for as long as the entry lives.
  return Buffer.from(pack(commandTuple(command)));
}

function commandTuple(command: KvCommand): unknown[] {
  switch (command.type) {
    case "put":
      return [
        command.type,
        command.requestId,
        command.key,
        command.value,
        command.lease,
        command.compare === null ? null : compareTuple(command.compare),
      ];
    case "delete":
      return [
        command.type,
        command.requestId,
        command.key,
        command.compare === null ? null : compareTuple(command.compare),
      ];
    case "txn":
      return [
        command.type,
        command.requestId,
        command.compare.map(compareTuple),
        command.success.map(txnOpTuple),
        command.failure.map(txnOpTuple),
      ];
    case "lease-grant":
      return [command.type, command.requestId, command.ttlMs];
    case "lease-revoke":
      return [command.type, command.requestId, command.lease];
    case "lease-expire":
      return [command.type, command.lease];
    case "compact":
      return [command.type, command.revision];
  }
}

function compareTuple(compare: Compare): unknown[] {
  return [compare.key, compare.target, compare.op, compare.operand];
}

function txnOpTuple(op: TxnOp): unknown[] {
  switch (op.op) {
    case "put":
      return [op.op, op.key, op.value, op.lease];
    case "delete":
    case "get":
      return [op.op, op.key];
  }
}

/**
 * Decodes and validates a log entry's command. Throws InvalidArgument (or MessageTooLarge)
 * naming the problem; the caller applies such an entry as a failed no-op.
 */
export function decodeKvCommand(bytes: Uint8Array): KvCommand {
  let tuple: unknown;
  try {
    tuple = unpack(bytes);
  } catch (error) {
    throw new BrigadeError("InvalidArgument", "a command must be msgpack", { cause: error });
  }
  return validateKvCommand(commandFromTuple(tuple));
}

function commandFromTuple(tuple: unknown): unknown {
  if (!Array.isArray(tuple)) invalid("an encoded command must be an array");
  const [type] = tuple;
  switch (type) {
    case "put": {
      const [, requestId, key, value, lease, compare] = tuple;
      return { type, requestId, key, value, lease, compare: compareFromTuple(compare) };
    }
    case "delete": {
      const [, requestId, key, compare] = tuple;
      return { type, requestId, key, compare: compareFromTuple(compare) };
    }
    case "txn": {
      const [, requestId, compare, success, failure] = tuple;
      if (!Array.isArray(compare) || !Array.isArray(success) || !Array.isArray(failure))
        invalid("an encoded txn must hold arrays of compares and operations");
      return {
        type,
        requestId,
        compare: compare.map(compareFromTuple),
        success: success.map(txnOpFromTuple),
        failure: failure.map(txnOpFromTuple),
      };
    }
    case "lease-grant":
      return { type, requestId: tuple[1], ttlMs: tuple[2] };
    case "lease-revoke":
      return { type, requestId: tuple[1], lease: tuple[2] };
    case "lease-expire":
      return { type, lease: tuple[1] };
    case "compact":
      return { type, revision: tuple[1] };
    default:
      return invalid(`unknown command type ${JSON.stringify(type)}`);
  }
}

function compareFromTuple(tuple: unknown): unknown {
  if (tuple === null || !Array.isArray(tuple)) return tuple;
  const [key, target, op, operand] = tuple;
  return { key, target, op, operand };
}

function txnOpFromTuple(tuple: unknown): unknown {
  if (!Array.isArray(tuple)) return tuple;
  const [op, key, value, lease] = tuple;
  return op === "put" ? { op, key, value, lease } : { op, key };
}

/**
 * Checks a command's whole shape and limits (it may come from an HTTP client or another
 * node) and returns a typed copy without unknown fields. Throws InvalidArgument, or
 * MessageTooLarge for values over `kvLimits.valueBytesMax` (`commandValueBytesMax` together).
 */
export function validateKvCommand(input: unknown): KvCommand {
  if (typeof input !== "object" || input === null) invalid("a command must be an object");
  const command = input as Record<string, unknown>;
  const values = { bytes: 0 };
  const checked = ((): KvCommand => {
    switch (command.type) {
      case "put": {
        const key = checkKey(command.key, "key");
        return {
          type: "put",
          requestId: checkRequestId(command.requestId),
          key,
          value: checkValue(command.value, "value", values),
          lease: checkLeaseOrNone(command.lease, "lease"),
          compare: checkSingleKeyCompare(command.compare, key, values),
        };
      }
      case "delete": {
        const key = checkKey(command.key, "key");
        return {
          type: "delete",
          requestId: checkRequestId(command.requestId),
          key,
          compare: checkSingleKeyCompare(command.compare, key, values),
        };
      }
      case "txn":
        return {
          type: "txn",
          requestId: checkRequestId(command.requestId),
          compare: checkList(command.compare, "compare").map((compare, at) =>
            checkCompare(compare, `compare[${at}]`, values),
          ),
          success: checkTxnOps(command.success, "success", values),
          failure: checkTxnOps(command.failure, "failure", values),
        };
      case "lease-grant":
        return {
          type: "lease-grant",
          requestId: checkRequestId(command.requestId),
          ttlMs: checkTtlMs(command.ttlMs),
        };
      case "lease-revoke":
        return {
          type: "lease-revoke",
          requestId: checkRequestId(command.requestId),
          lease: checkLease(command.lease, "lease"),
        };
      case "lease-expire":
        return { type: "lease-expire", lease: checkLease(command.lease, "lease") };
      case "compact":
        if (!Number.isSafeInteger(command.revision) || (command.revision as number) < 0)
          invalid("compact revision must be a non-negative integer");
        return { type: "compact", revision: command.revision as number };
      default:
        return invalid(
          `unknown command type ${JSON.stringify(command.type)} (use put, delete, txn, lease-grant, lease-revoke, lease-expire, compact)`,
        );
    }
  })();
  if (values.bytes > commandValueBytesMax)
    throw new BrigadeError(
      "MessageTooLarge",
      `the command's values total ${values.bytes} bytes; at most ${commandValueBytesMax} per command`,
    );
  return checked;
}

function checkRequestId(requestId: unknown): string {
  if (
    typeof requestId !== "string" ||
    requestId.length === 0 ||
    Buffer.byteLength(requestId) > kvLimits.requestIdBytesMax
  )
    invalid(`requestId must be a string of 1..${kvLimits.requestIdBytesMax} bytes`);
  return requestId;
}

function checkKey(key: unknown, what: string): string {
  if (typeof key !== "string" || key.length === 0) invalid(`${what} must be a non-empty string`);
  if (loneSurrogate.test(key)) invalid(`${what} must be valid Unicode (it has a lone surrogate)`);
  const bytes = Buffer.byteLength(key);
  if (bytes > kvLimits.keyBytesMax)
    invalid(`${what} is ${bytes} bytes long; at most ${kvLimits.keyBytesMax} (UTF-8)`);
  return key;
}

function checkValue(value: unknown, what: string, values: { bytes: number }): Uint8Array {
  if (!(value instanceof Uint8Array)) invalid(`${what} must be bytes`);
  if (value.length > kvLimits.valueBytesMax)
    throw new BrigadeError(
      "MessageTooLarge",
      `${what} is ${value.length} bytes; at most ${kvLimits.valueBytesMax}`,
    );
  values.bytes += value.length;
  return value;
}

function checkLease(lease: unknown, what: string): number {
  if (!Number.isSafeInteger(lease) || (lease as number) < 1)
    invalid(`${what} must be a positive integer lease id`);
  return lease as number;
}

function checkLeaseOrNone(lease: unknown, what: string): number {
  return lease === 0 ? 0 : checkLease(lease, `${what} (0 for none)`);
}

function checkTtlMs(ttlMs: unknown): number {
  const { leaseTtlMsMin, leaseTtlMsMax } = kvLimits;
  const inRange =
    Number.isSafeInteger(ttlMs) &&
    (ttlMs as number) >= leaseTtlMsMin &&
    (ttlMs as number) <= leaseTtlMsMax;
  if (!inRange) invalid(`ttlMs must be an integer in ${leaseTtlMsMin}..${leaseTtlMsMax}`);
  return ttlMs as number;
}

function checkList(list: unknown, what: string): readonly unknown[] {
  if (!Array.isArray(list)) invalid(`${what} must be an array`);
  if (list.length > kvLimits.txnOpsMax)
    invalid(`${what} has ${list.length} entries; at most ${kvLimits.txnOpsMax}`);
  return list;
}

function checkSingleKeyCompare(
  compare: unknown,
  key: string,
  values: { bytes: number },
): Compare | null {
  if (compare === null || compare === undefined) return null;
  const checked = checkCompare(compare, "compare", values);
  if (checked.key !== key) invalid("compare must be on the key the command writes");
  return checked;
}

function checkCompare(input: unknown, what: string, values: { bytes: number }): Compare {
  if (typeof input !== "object" || input === null) invalid(`${what} must be an object`);
  const compare = input as Record<string, unknown>;
  const key = checkKey(compare.key, `${what}.key`);
  const { target, op, operand } = compare;
  if (typeof target !== "string" || !compareTargets.has(target))
    invalid(`${what}.target must be one of ${[...compareTargets].join(", ")}`);
  if (typeof op !== "string" || !compareOps.has(op))
    invalid(`${what}.op must be one of ${[...compareOps].join(" ")}`);
  if (target === "value") {
    return {
      key,
      target,
      op: op as Compare["op"],
      operand: checkValue(operand, `${what}.operand`, values),
    };
  }
  if (!Number.isSafeInteger(operand)) invalid(`${what}.operand must be an integer for ${target}`);
  return {
    key,
    target: target as Compare["target"],
    op: op as Compare["op"],
    operand: operand as number,
  };
}

/** A branch writes each key at most once: its writes share one revision (as etcd). */
function checkTxnOps(list: unknown, what: string, values: { bytes: number }): TxnOp[] {
  const written = new Set<string>();
  return checkList(list, what).map((input, at) => {
    const where = `${what}[${at}]`;
    if (typeof input !== "object" || input === null) invalid(`${where} must be an object`);
    const op = input as Record<string, unknown>;
    const key = checkKey(op.key, `${where}.key`);
    if (op.op === "get") return { op: "get", key };
    if (op.op !== "put" && op.op !== "delete") invalid(`${where}.op must be put, delete or get`);
    if (written.has(key)) invalid(`${where} writes key ${JSON.stringify(key)} a second time`);
    written.add(key);
    if (op.op === "delete") return { op: "delete", key };
    return {
      op: "put",
      key,
      value: checkValue(op.value, `${where}.value`, values),
      lease: checkLeaseOrNone(op.lease, `${where}.lease`),
    };
  });
}
