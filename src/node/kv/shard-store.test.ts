// Goal: a shard's store gives the results, reads, events and revisions of a plain in-memory
// model of the contract (kv-types.ts), also across snapshots, restarts and replays of the
// log, and refuses malformed commands without writing. Method: a fast-check model test of
// random command sequences, then scenario tests, on real LMDB environments in temp dirs.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { pack, unpack } from "msgpackr";
import { isBrigadeError } from "../../lib/errors.js";
import { decodeKvCommand, encodeKvCommand, validateKvCommand } from "./kv-codec.js";
import type {
  Compare,
  KeyValue,
  KvCommand,
  KvEvent,
  KvResult,
  ScanPage,
  ScanRequest,
  TxnOp,
  TxnOpResult,
} from "./kv-types.js";
import { KvEngine, type ShardStore, type ShardStoreOptions } from "./shard-store.js";

// ---- The model ---------------------------------------------------------------------------

const bytesOf = (key: string) => Buffer.from(key, "utf8");
const byKey = (a: KeyValue, b: KeyValue) => Buffer.compare(bytesOf(a.key), bytesOf(b.key));
const notFound: KvResult = { type: "error", code: "NotFound", message: "" };

/** The contract, written plainly: maps and arrays, no storage tricks. */
class Model {
  revision = 0;
  compacted = 0;
  leaseCounter = 0;
  readonly keys = new Map<string, KeyValue>();
  readonly leases = new Map<number, number>();
  events: KvEvent[] = [];
  readonly results = new Map<string, KvResult>();
  #pending: KvEvent[] = [];

  constructor(readonly options: ShardStoreOptions) {}

  apply(command: KvCommand): { result: KvResult; events: KvEvent[] } {
    this.#pending = [];
    const result = this.#apply(command);
    return { result, events: this.#pending };
  }

  #apply(command: KvCommand): KvResult {
    if (command.type === "compact") {
      this.#compactThrough(Math.min(command.revision, this.revision + 1) - 1);
      return { type: "write", succeeded: true, revision: this.revision, prev: null };
    }
    if (command.type === "lease-expire") return this.#endLease(command.lease);
    const seen = this.results.get(command.requestId);
    if (seen !== undefined) return duplicateOf(seen);
    const result = this.#execute(command);
    if (result.type !== "error") {
      this.results.set(command.requestId, result);
      while (this.results.size > this.options.requestIdsRemembered)
        this.results.delete(this.results.keys().next().value!);
    }
    return result;
  }

  #execute(command: KvCommand): KvResult {
    switch (command.type) {
      case "put": {
        const current = this.keys.get(command.key) ?? null;
        if (command.compare !== null && !holds(command.compare, current))
          return { type: "write", succeeded: false, revision: this.revision, prev: current };
        if (command.lease !== 0 && !this.leases.has(command.lease)) return notFound;
        this.#put(command.key, command.value, command.lease);
        return { type: "write", succeeded: true, revision: this.#finish(), prev: current };
      }
      case "delete": {
        const current = this.keys.get(command.key) ?? null;
        if (command.compare !== null && !holds(command.compare, current))
          return {
            type: "write",
            succeeded: false,
            revision: this.revision,
            prev: current,
            deleted: false,
          };
        const deleted = this.#delete(command.key);
        return { type: "write", succeeded: true, revision: this.#finish(), prev: current, deleted };
      }
      case "txn": {
        const succeeded = command.compare.every((compare) =>
          holds(compare, this.keys.get(compare.key) ?? null),
        );
        const ops = succeeded ? command.success : command.failure;
        if (ops.some((op) => op.op === "put" && op.lease !== 0 && !this.leases.has(op.lease)))
          return notFound;
        const results = ops.map((op): TxnOpResult => {
          const prev = this.keys.get(op.key) ?? null;
          if (op.op === "get") return { op: "get", kv: prev };
          if (op.op === "put") {
            this.#put(op.key, op.value, op.lease);
            return { op: "put", prev };
          }
          return { op: "delete", deleted: this.#delete(op.key), prev };
        });
        return { type: "txn", succeeded, revision: this.#finish(), results };
      }
      case "lease-grant": {
        this.leaseCounter++;
        const lease = this.options.leaseIdBase + this.leaseCounter;
        this.leases.set(lease, command.ttlMs);
        return { type: "lease", lease, ttlMs: command.ttlMs, revision: this.revision };
      }
      case "lease-revoke":
        return this.#endLease(command.lease);
      default:
        throw new Error(`not a request command: ${command.type}`);
    }
  }

  #endLease(lease: number): KvResult {
    const ttlMs = this.leases.get(lease);
    if (ttlMs === undefined) return notFound;
    const attached = [...this.keys.values()].filter((kv) => kv.lease === lease).sort(byKey);
    for (const kv of attached) this.#delete(kv.key);
    this.leases.delete(lease);
    return { type: "lease", lease, ttlMs, revision: this.#finish() };
  }

  #put(key: string, value: Uint8Array, lease: number): void {
    const revision = this.revision + 1;
    const prev = this.keys.get(key) ?? null;
    const kv: KeyValue = {
      key,
      value,
      version: (prev?.version ?? 0) + 1,
      createRevision: prev?.createRevision ?? revision,
      modRevision: revision,
      lease,
    };
    this.keys.set(key, kv);
    this.#pending.push({ type: "put", revision, kv, prev });
  }

  #delete(key: string): boolean {
    const prev = this.keys.get(key);
    if (prev === undefined) return false;
    const revision = this.revision + 1;
    this.keys.delete(key);
    const kv = {
      key,
      value: new Uint8Array(),
      version: 0,
      createRevision: 0,
      modRevision: revision,
      lease: 0,
    };
    this.#pending.push({ type: "delete", revision, kv, prev });
    return true;
  }

  #finish(): number {
    if (this.#pending.length === 0) return this.revision;
    this.revision++;
    this.events.push(...this.#pending);
    const kept = this.options.historyRevisionsKept;
    if (this.revision - this.compacted >= 2 * kept) this.#compactThrough(this.revision - kept);
    return this.revision;
  }

  #compactThrough(revision: number): void {
    if (revision <= this.compacted) return;
    this.compacted = revision;
    this.events = this.events.filter((event) => event.revision > revision);
  }

  scan(request: ScanRequest): ScanPage {
    const matching = [...this.keys.values()].sort(byKey).filter((kv) => {
      const key = bytesOf(kv.key);
      const { prefix, start, end, after } = request;
      if (prefix !== null && !key.subarray(0, bytesOf(prefix).length).equals(bytesOf(prefix)))
        return false;
      if (start !== null && Buffer.compare(key, bytesOf(start)) < 0) return false;
      if (end !== null && Buffer.compare(key, bytesOf(end)) >= 0) return false;
      return after === null || Buffer.compare(key, bytesOf(after)) > 0;
    });
    return { items: matching.slice(0, request.limit), more: matching.length > request.limit };
  }
}

function holds(compare: Compare, kv: KeyValue | null): boolean {
  let order: number;
  if (compare.target === "value") {
    if (kv === null) return compare.op === "!=";
    order = Buffer.compare(Buffer.from(kv.value), Buffer.from(compare.operand as Uint8Array));
  } else {
    const actual = kv === null ? 0 : kv[compare.target];
    order = actual === compare.operand ? 0 : actual < (compare.operand as number) ? -1 : 1;
  }
  return { "==": order === 0, "!=": order !== 0, "<": order < 0, ">": order > 0 }[compare.op];
}

/** What a retried command gets: the first result without key-values, marked duplicate. */
function duplicateOf(result: KvResult): KvResult {
  switch (result.type) {
    case "write":
      return { ...result, prev: null, duplicate: true };
    case "txn":
      return {
        ...result,
        results: result.results.map((op) =>
          op.op === "get" ? { op: "get", kv: null } : { ...op, prev: null },
        ),
        duplicate: true,
      };
    case "lease":
      return { ...result, duplicate: true };
    case "error":
      return result;
  }
}

/** Comparable data: bytes as hex (Buffer vs Uint8Array), no undefined fields, no error text. */
function plain(value: unknown): unknown {
  if (value instanceof Uint8Array) return `0x${Buffer.from(value).toString("hex")}`;
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === "object" && value !== null) {
    const entries = Object.entries(value).filter(
      ([name, field]) =>
        field !== undefined && !(name === "message" && (value as KvResult).type === "error"),
    );
    return Object.fromEntries(entries.map(([name, field]) => [name, plain(field)]));
  }
  return value;
}

// ---- Helpers -----------------------------------------------------------------------------

const options: ShardStoreOptions = {
  leaseIdBase: 100,
  requestIdsRemembered: 5,
  historyRevisionsKept: 3,
};
const long = "x".repeat(1800);
/** Short keys, a key of exactly the stored prefix, and hashed keys sharing it (or not). */
const alphabet = [
  "a",
  "ab",
  "b",
  "é",
  "x",
  long,
  `${long}a`,
  `${long}ab`,
  `${long}b`,
  `${"x".repeat(1799)}é`,
];
const bounds = [...alphabet, "", "a\u0000", "c", `${long}aa`, "x".repeat(1799)];
const prefixes = ["", "a", "x", long, `${long}a`, "x".repeat(1799), "é"];

function scanAll(store: ShardStore | Model, pageLimit: number): KeyValue[] {
  const items: KeyValue[] = [];
  let after: string | null = null;
  for (;;) {
    const page: ScanPage = store.scan({
      prefix: null,
      start: null,
      end: null,
      after,
      limit: pageLimit,
    });
    items.push(...page.items);
    if (!page.more) return items;
    after = page.items.at(-1)!.key;
  }
}

function stateOf(store: ShardStore): unknown {
  return plain({
    stats: store.stats(),
    keys: scanAll(store, 1000),
    events: store.events(0, { prefix: "" }, 100_000),
    leases: store.leases(),
    attached: store.leases().map((lease) => store.leaseKeys(lease.lease)),
  });
}

/** Compares every read of `store` with the model. */
function checkReads(store: ShardStore, model: Model, appliedIndex: number, scan: ScanRequest) {
  assert.deepEqual(store.stats(), {
    keys: model.keys.size,
    revision: model.revision,
    compactedRevision: model.compacted,
    appliedIndex,
    leases: model.leases.size,
  });
  for (const key of alphabet)
    assert.deepEqual(plain(store.get(key)), plain(model.keys.get(key) ?? null), `get ${key}`);
  assert.deepEqual(plain(store.scan(scan)), plain(model.scan(scan)), JSON.stringify(scan));
  assert.deepEqual(plain(scanAll(store, 2)), plain(scanAll(model, 1000)), "paged scan");
  for (const prefix of prefixes) {
    const request = { prefix, start: null, end: null, after: null, limit: 3 };
    assert.deepEqual(plain(store.scan(request)), plain(model.scan(request)), `prefix ${prefix}`);
  }
  assert.deepEqual(plain(store.events(0, { prefix: "" }, 1000)), plain(model.events));
  const latest = Math.max(model.revision, model.compacted + 1);
  assert.deepEqual(
    plain(store.events(model.compacted + 1, { key: `${long}a` }, 1000)),
    plain(model.events.filter((event) => event.kv.key === `${long}a`)),
  );
  assert.deepEqual(
    plain(store.events(latest, { prefix: "a" }, 1)),
    plain(
      model.events
        .filter((event) => event.revision >= latest && event.kv.key.startsWith("a"))
        .slice(0, 1),
    ),
  );
  if (model.compacted > 0)
    assert.throws(
      () => store.events(model.compacted, { prefix: "" }, 10),
      (error) => isBrigadeError(error, "Compacted"),
    );
  const leases = [...model.leases].sort(([a], [b]) => a - b);
  assert.deepEqual(
    store.leases(),
    leases.map(([lease, ttlMs]) => ({ lease, ttlMs })),
  );
  for (const [lease] of [...leases, [999]] as [number][]) {
    const attached = [...model.keys.values()].filter((kv) => kv.lease === lease).sort(byKey);
    assert.deepEqual(
      store.leaseKeys(lease),
      attached.map((kv) => kv.key),
    );
  }
}

let engine: KvEngine;
let directory: string;
let nextGroup = 1;

function freshShard(overrides: Partial<ShardStoreOptions> = {}): ShardStore {
  return engine.shard(nextGroup++, overrides);
}

/** Applies commands from log index `first` on; returns the results. */
function applyAll(store: ShardStore, commands: readonly KvCommand[], first = 1): KvResult[] {
  return commands.map((command, at) => store.apply(first + at, encodeKvCommand(command)));
}

const bytes = (...values: number[]) => Uint8Array.from(values);
const put = (requestId: string, key: string, value: Uint8Array, lease = 0): KvCommand => ({
  type: "put",
  requestId,
  key,
  value,
  lease,
  compare: null,
});
const del = (requestId: string, key: string): KvCommand => ({
  type: "delete",
  requestId,
  key,
  compare: null,
});

// ---- Arbitraries ---------------------------------------------------------------------------

const keyArb = fc.constantFrom(...alphabet);
const valueArb = fc.constantFrom(bytes(), bytes(1), bytes(2), bytes(1, 2), bytes(0xff));
/** Mostly no lease; else one of the first three granted (ids 101..), or one never granted. */
const leaseArb = fc.oneof(
  { weight: 3, arbitrary: fc.constant(0) },
  { weight: 1, arbitrary: fc.constantFrom(101, 102, 103, 999) },
);
const grantedLeaseArb = fc.constantFrom(101, 102, 103, 999);
/** Mostly null: each present bound or compare narrows what a step touches. */
function rarely<T>(arbitrary: fc.Arbitrary<T>): fc.Arbitrary<T | null> {
  return fc.oneof({ weight: 2, arbitrary: fc.constant(null) }, { weight: 1, arbitrary });
}
const requestIdArb = fc.integer({ min: 0, max: 20 }).map((n) => `r${n}`);
const opArb = fc.constantFrom("==", "!=", "<", ">") as fc.Arbitrary<Compare["op"]>;

function compareArb(key: fc.Arbitrary<string>): fc.Arbitrary<Compare> {
  return fc.oneof(
    fc.record({ key, target: fc.constant("value" as const), op: opArb, operand: valueArb }),
    fc.record({
      key,
      target: fc.constantFrom("version", "createRevision", "modRevision", "lease") as fc.Arbitrary<
        Exclude<Compare["target"], "value">
      >,
      op: opArb,
      operand: fc.constantFrom(0, 1, 2, 3, 5, 8, 101),
    }),
  );
}

const txnOpArb: fc.Arbitrary<TxnOp> = fc.oneof(
  fc.record({ op: fc.constant("put" as const), key: keyArb, value: valueArb, lease: leaseArb }),
  fc.record({ op: fc.constant("delete" as const), key: keyArb }),
  fc.record({ op: fc.constant("get" as const), key: keyArb }),
);

/** A branch writes each key once (validation refuses more). */
function onceEach(ops: TxnOp[]): TxnOp[] {
  const written = new Set<string>();
  return ops.filter((op) => {
    if (op.op === "get") return true;
    if (written.has(op.key)) return false;
    written.add(op.key);
    return true;
  });
}

const commandArb: fc.Arbitrary<KvCommand> = fc.oneof(
  {
    weight: 5,
    arbitrary: keyArb.chain((key) =>
      fc.record({
        type: fc.constant("put" as const),
        requestId: requestIdArb,
        key: fc.constant(key),
        value: valueArb,
        lease: leaseArb,
        compare: rarely(compareArb(fc.constant(key))),
      }),
    ),
  },
  {
    weight: 2,
    arbitrary: keyArb.chain((key) =>
      fc.record({
        type: fc.constant("delete" as const),
        requestId: requestIdArb,
        key: fc.constant(key),
        compare: rarely(compareArb(fc.constant(key))),
      }),
    ),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      type: fc.constant("txn" as const),
      requestId: requestIdArb,
      compare: fc.array(compareArb(keyArb), { maxLength: 2 }),
      success: fc.array(txnOpArb, { maxLength: 4 }).map(onceEach),
      failure: fc.array(txnOpArb, { maxLength: 3 }).map(onceEach),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constant("lease-grant" as const),
      requestId: requestIdArb,
      ttlMs: fc.constantFrom(1000, 5000),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constant("lease-revoke" as const),
      requestId: requestIdArb,
      lease: grantedLeaseArb,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constant("lease-expire" as const),
      lease: grantedLeaseArb,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constant("compact" as const),
      revision: fc.integer({ min: 0, max: 40 }),
    }),
  },
);

/** A log entry: a command, or bytes that are not one (they apply as a failed no-op). */
type Entry = { readonly command: KvCommand } | { readonly garbage: Uint8Array };

const entryArb: fc.Arbitrary<Entry> = fc.oneof(
  { weight: 20, arbitrary: commandArb.map((command) => ({ command })) },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom(bytes(0xc1), pack(["put", "r1", "", bytes(), 0, null]), pack(["drop", "r1"]))
      .map((garbage) => ({ garbage })),
  },
);

const optionalBound = rarely(fc.constantFrom(...bounds));
const scanArb: fc.Arbitrary<ScanRequest> = fc.record({
  prefix: rarely(fc.constantFrom(...prefixes)),
  start: optionalBound,
  end: optionalBound,
  after: optionalBound,
  limit: fc.integer({ min: 1, max: 4 }),
});

// ---- Tests ---------------------------------------------------------------------------------

describe("shard store", () => {
  before(() => {
    directory = fs.mkdtempSync(path.join(os.tmpdir(), "brigade-shard-store-"));
    engine = KvEngine.open(directory);
  });
  after(async () => {
    await engine.close();
    fs.rmSync(directory, { recursive: true, force: true });
  });

  it("matches the model over random commands, also after a snapshot is restored", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(entryArb, scanArb), { minLength: 1, maxLength: 60, size: "max" }),
        fc.nat(),
        (steps, cut) => {
          const model = new Model(options);
          const stores = [freshShard(options)];
          const delivered: KvEvent[][] = [];
          stores[0]!.onEvents((events) => delivered.push([...events]));
          const restoreAt = cut % steps.length;
          steps.forEach(([entry, scan], at) => {
            const index = at + 1;
            if (at === restoreAt) {
              const copy = freshShard(options);
              copy.restore(stores[0]!.snapshot());
              assert.deepEqual(stateOf(copy), stateOf(stores[0]!));
              stores.push(copy);
            }
            const expected =
              "command" in entry
                ? model.apply(entry.command)
                : { result: { type: "error", code: "InvalidArgument" }, events: [] };
            const data = "command" in entry ? encodeKvCommand(entry.command) : entry.garbage;
            delivered.length = 0;
            for (const store of stores) {
              const result = store.apply(index, data);
              assert.deepEqual(plain(result), plain(expected.result), JSON.stringify(entry));
              checkReads(store, model, index, scan);
            }
            assert.deepEqual(
              plain(delivered),
              plain(expected.events.length === 0 ? [] : [expected.events]),
            );
          });
        },
      ),
      { numRuns: 80, includeErrorInReport: true },
    );
  });

  it("restores a snapshot into a fresh shard that then applies like the original", () => {
    const source = freshShard(options);
    const script: KvCommand[] = [
      { type: "lease-grant", requestId: "g1", ttlMs: 2000 },
      put("p1", "a", bytes(1), 101),
      put("p2", `${long}b`, bytes(2), 101),
      put("p3", `${long}a`, bytes(3)),
      put("p4", "b", bytes(4)),
      {
        type: "txn",
        requestId: "t1",
        compare: [{ key: "a", target: "version", op: "==", operand: 1 }],
        success: [
          { op: "put", key: "c", value: bytes(5), lease: 0 },
          { op: "delete", key: "b" },
        ],
        failure: [],
      },
    ];
    applyAll(source, script);
    const copy = freshShard(options);
    applyAll(copy, [put("other", "zzz", bytes(9))]); // replaced by the image
    copy.restore(source.snapshot());
    assert.deepEqual(stateOf(copy), stateOf(source));
    const further: KvCommand[] = [
      put("p1", "a", bytes(7)), // a duplicate: remembered across the snapshot
      put("p5", "a", bytes(8)),
      { type: "lease-revoke", requestId: "r1", lease: 101 },
      { type: "compact", revision: 6 },
      del("d1", `${long}a`),
    ];
    const first = script.length + 1;
    assert.deepEqual(
      plain(applyAll(copy, further, first)),
      plain(applyAll(source, further, first)),
    );
    assert.deepEqual(stateOf(copy), stateOf(source));
    assert.equal(copy.get("a")?.version, 2);
    assert.deepEqual(copy.get(`${long}b`), null);
  });

  it("an image built in slices is the state at the call, whatever is applied meanwhile", async () => {
    const store = freshShard(options);
    const script = Array.from({ length: 900 }, (_, index) =>
      put(`s${index}`, `key-${index % 700}`, bytes(index % 256, 1)),
    );
    applyAll(store, script);
    const expected = Buffer.from(store.snapshot());
    const building = store.snapshotInSlices();
    // Applied while the image is being built (it pauses every 256 records).
    applyAll(
      store,
      Array.from({ length: 300 }, (_, index) => put(`late${index}`, `key-${index}`, bytes(7))),
      script.length + 1,
    );
    const image = Buffer.from(await building);
    assert.ok(image.equals(expected), "the sliced image differs from the image at the call");
    assert.notDeepEqual(Buffer.from(store.snapshot()), expected);
  });

  it("ignores an image older than its state and refuses a corrupt one, changing nothing", () => {
    const store = freshShard(options);
    applyAll(store, [put("1", "a", bytes(1)), put("2", "b", bytes(2))]);
    const older = store.snapshot();
    applyAll(store, [put("3", "c", bytes(3))], 3);
    const before = stateOf(store);
    store.restore(older);
    assert.deepEqual(stateOf(store), before);

    const fresh = freshShard(options);
    applyAll(fresh, [put("x", "kept", bytes(1))]);
    const fields = unpack(store.snapshot()) as unknown[];
    const badKey = structuredClone(fields);
    (badKey[6] as unknown[])[0] = 42;
    const missingLease = structuredClone(fields);
    (missingLease[6] as unknown[])[5] = 7;
    const images = [
      Buffer.from("not an image"),
      pack(["brigade.kv.shard", 99, ...fields.slice(2)]),
      pack(fields.slice(0, 8)),
      pack(badKey),
      pack(missingLease),
    ];
    const kept = stateOf(fresh);
    for (const image of images) {
      assert.throws(
        () => fresh.restore(image),
        (error) => isBrigadeError(error, "SnapshotCorrupt"),
      );
      assert.deepEqual(stateOf(fresh), kept);
    }
  });

  it("skips entries it already applied after a restart, then applies new ones", async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "brigade-shard-replay-"));
    try {
      const commands = [
        put("1", "a", bytes(1)),
        { type: "lease-grant", requestId: "2", ttlMs: 1000 } as KvCommand,
        put("3", "b", bytes(2), 1),
        del("4", "a"),
      ];
      const before = KvEngine.open(home);
      const results = applyAll(before.shard(7), commands);
      const state = stateOf(before.shard(7));
      const image = before.shard(7).snapshot();
      await before.close();

      const reopened = KvEngine.open(home);
      const store = reopened.shard(7);
      assert.deepEqual(stateOf(store), state);
      for (const result of applyAll(store, commands))
        assert.deepEqual(plain(result), { type: "error", code: "InvalidArgument" });
      store.restore(image); // same index: already held
      assert.deepEqual(stateOf(store), state);
      assert.deepEqual(plain(results.at(-1)), {
        type: "write",
        succeeded: true,
        revision: 3,
        prev: {
          key: "a",
          value: "0x01",
          version: 1,
          createRevision: 1,
          modRevision: 1,
          lease: 0,
        },
        deleted: true,
      });
      const next = store.apply(5, encodeKvCommand(put("5", "a", bytes(3))));
      assert.equal(next.type === "write" && next.revision, 4);
      assert.equal(store.appliedIndex, 5);
      await reopened.close();
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });

  it("applies a retried request once and forgets the oldest ids beyond the limit", () => {
    const store = freshShard({ requestIdsRemembered: 3 });
    assert.equal(store.apply(1, encodeKvCommand(put("x", "k", bytes(1)))).type, "write");
    assert.deepEqual(store.apply(2, encodeKvCommand(put("x", "k", bytes(2)))), {
      type: "write",
      succeeded: true,
      revision: 1,
      prev: null,
      duplicate: true,
    });
    assert.deepEqual(
      plain(store.get("k")),
      plain({ key: "k", value: bytes(1), version: 1, createRevision: 1, modRevision: 1, lease: 0 }),
    );
    // An error is not remembered: the retry applies once the lease exists.
    assert.equal(store.apply(3, encodeKvCommand(put("y", "l", bytes(1), 1))).type, "error");
    applyAll(store, [{ type: "lease-grant", requestId: "g", ttlMs: 1000 }], 4);
    assert.equal(store.apply(5, encodeKvCommand(put("y", "l", bytes(1), 1))).type, "write");
    applyAll(store, [put("a", "a", bytes()), put("b", "b", bytes())], 6);
    // Remembered now: y, a, b (x and g are forgotten, oldest first).
    const retried = store.apply(8, encodeKvCommand(put("y", "l", bytes(1), 1)));
    assert.deepEqual(retried.type === "write" && [retried.duplicate, retried.revision], [true, 2]);
    const again = store.apply(9, encodeKvCommand(put("x", "k", bytes(3))));
    assert.deepEqual(again.type === "write" && [again.duplicate, again.revision], [undefined, 5]);
    assert.equal(store.get("k")?.version, 2);
    const txn: KvCommand = {
      type: "txn",
      requestId: "t",
      compare: [],
      success: [
        { op: "get", key: "k" },
        { op: "delete", key: "nothing" },
        { op: "delete", key: "a" },
      ],
      failure: [],
    };
    store.apply(10, encodeKvCommand(txn));
    assert.deepEqual(store.apply(11, encodeKvCommand(txn)), {
      type: "txn",
      succeeded: true,
      revision: 6,
      results: [
        { op: "get", kv: null },
        { op: "delete", deleted: false, prev: null },
        { op: "delete", deleted: true, prev: null },
      ],
      duplicate: true,
    });
  });

  it("keeps events in order, filters them, and reports compacted history", () => {
    const store = freshShard({ historyRevisionsKept: 4 });
    const seen: KvEvent[][] = [];
    const unsubscribe = store.onEvents((events) => {
      assert.equal(store.revision, events[0]?.revision); // committed before listeners run
      seen.push([...events]);
    });
    applyAll(store, [
      put("1", "a", bytes(1)),
      put("2", "ab", bytes(2)),
      {
        type: "txn",
        requestId: "3",
        compare: [],
        success: [
          { op: "put", key: "b", value: bytes(3), lease: 0 },
          { op: "delete", key: "a" },
        ],
        failure: [],
      },
    ]);
    const summary = (events: readonly KvEvent[]) =>
      events.map((event) => `${event.revision}:${event.type}:${event.kv.key}`);
    assert.deepEqual(summary(store.events(0, { prefix: "" }, 100)), [
      "1:put:a",
      "2:put:ab",
      "3:put:b",
      "3:delete:a",
    ]);
    assert.deepEqual(seen.map(summary), [["1:put:a"], ["2:put:ab"], ["3:put:b", "3:delete:a"]]);
    assert.deepEqual(summary(store.events(2, { prefix: "a" }, 100)), ["2:put:ab", "3:delete:a"]);
    assert.deepEqual(summary(store.events(0, { key: "a" }, 1)), ["1:put:a"]);
    assert.deepEqual(summary(store.events(4, { prefix: "" }, 100)), []);
    const deletion = store.events(3, { key: "a" }, 1)[0]!;
    assert.deepEqual(plain(deletion.prev?.value), "0x01");
    assert.deepEqual(
      plain(deletion.kv),
      plain({ key: "a", value: bytes(), version: 0, createRevision: 0, modRevision: 3, lease: 0 }),
    );
    unsubscribe();

    applyAll(store, [{ type: "compact", revision: 3 }], 4);
    assert.equal(store.compactedRevision, 2);
    assert.throws(
      () => store.events(2, { prefix: "" }, 100),
      (error) => isBrigadeError(error, "Compacted") && !error.retriable,
    );
    assert.deepEqual(summary(store.events(3, { prefix: "" }, 100)), ["3:put:b", "3:delete:a"]);
    applyAll(store, [{ type: "compact", revision: 1 }], 5); // backwards: nothing
    assert.equal(store.compactedRevision, 2);
    applyAll(store, [{ type: "compact", revision: 100 }], 6); // the future: all history
    assert.equal(store.compactedRevision, 3);
    assert.deepEqual(store.events(0, { prefix: "" }, 100), []);

    // Automatic: at revision 3 + 2 × 4 = 11, history is cut to the last 4 revisions.
    const puts = Array.from({ length: 8 }, (_, at) => put(`p${at}`, "k", bytes(at)));
    applyAll(store, puts.slice(0, 7), 7);
    assert.equal(store.compactedRevision, 3);
    applyAll(store, puts.slice(7), 14);
    assert.deepEqual([store.revision, store.compactedRevision], [11, 7]);
    assert.throws(
      () => store.events(7, { key: "k" }, 10),
      (error) => isBrigadeError(error, "Compacted"),
    );
    assert.deepEqual(summary(store.events(8, { key: "k" }, 10)), [
      "8:put:k",
      "9:put:k",
      "10:put:k",
      "11:put:k",
    ]);
    assert.equal(seen.length, 3); // unsubscribed
  });

  it("attaches keys to leases and deletes them with the lease at one revision", () => {
    const store = freshShard({ leaseIdBase: 5 * 2 ** 24 });
    const first = 5 * 2 ** 24 + 1;
    const results = applyAll(store, [
      { type: "lease-grant", requestId: "g1", ttlMs: 1000 },
      { type: "lease-grant", requestId: "g2", ttlMs: 3000 },
      put("1", "a", bytes(1), first),
      put("2", "b", bytes(1), first),
      put("3", "a", bytes(2), first + 1), // moves to the second lease
      put("4", "c", bytes(1), first),
      del("5", "c"),
      put("6", "x", bytes(1), 77),
    ]);
    assert.deepEqual(plain(results[1]), {
      type: "lease",
      lease: first + 1,
      ttlMs: 3000,
      revision: 0,
    });
    assert.equal(results[7]?.type === "error" && results[7].code, "NotFound");
    assert.deepEqual(store.leaseKeys(first), ["b"]);
    assert.deepEqual(store.leaseKeys(first + 1), ["a"]);
    assert.deepEqual(store.lease(first + 1), { lease: first + 1, ttlMs: 3000 });
    const revoked = store.apply(
      9,
      encodeKvCommand({ type: "lease-revoke", requestId: "r", lease: first }),
    );
    assert.deepEqual(revoked, { type: "lease", lease: first, ttlMs: 1000, revision: 6 });
    assert.equal(store.get("b"), null);
    const expired = store.apply(10, encodeKvCommand({ type: "lease-expire", lease: first }));
    assert.equal(expired.type === "error" && expired.code, "NotFound");
    assert.deepEqual(store.leases(), [{ lease: first + 1, ttlMs: 3000 }]);
    assert.deepEqual(store.stats(), {
      keys: 1,
      revision: 6,
      compactedRevision: 0,
      appliedIndex: 10,
      leases: 1,
    });
    // Hashed keys (over 1800 bytes) come back in key order too, not in hash order.
    const hashedKeys = [`${long}b`, `${long}ab`, `${long}a`, `${long}c`];
    applyAll(
      store,
      hashedKeys.map((key, at) => put(`h${at}`, key, bytes(1), first + 1)),
      11,
    );
    assert.deepEqual(store.leaseKeys(first + 1), ["a", ...hashedKeys.sort()]);
  });

  it("refuses malformed commands with typed errors, and applies them as no-ops", () => {
    const ok = put("r", "k", bytes(1));
    const compare: Compare = { key: "k", target: "version", op: "==", operand: 0 };
    const ops = (count: number) => Array.from({ length: count }, () => ({ op: "get", key: "k" }));
    const cases: [unknown, "InvalidArgument" | "MessageTooLarge"][] = [
      [null, "InvalidArgument"],
      [{ ...ok, type: "drop" }, "InvalidArgument"],
      [{ ...ok, key: "" }, "InvalidArgument"],
      [{ ...ok, key: "é".repeat(2049) }, "InvalidArgument"],
      [{ ...ok, requestId: "" }, "InvalidArgument"],
      [{ ...ok, requestId: "r".repeat(129) }, "InvalidArgument"],
      [{ ...ok, value: "text" }, "InvalidArgument"],
      [{ ...ok, value: new Uint8Array(1024 * 1024 + 1) }, "MessageTooLarge"],
      [{ ...ok, lease: -1 }, "InvalidArgument"],
      [{ ...ok, compare: { ...compare, key: "other" } }, "InvalidArgument"],
      [{ ...ok, compare: { ...compare, target: "size" } }, "InvalidArgument"],
      [{ ...ok, compare: { ...compare, op: ">=" } }, "InvalidArgument"],
      [{ ...ok, compare: { ...compare, operand: bytes(1) } }, "InvalidArgument"],
      [{ ...ok, compare: { ...compare, target: "value" } }, "InvalidArgument"],
      [
        { type: "txn", requestId: "t", compare: [], success: ops(129), failure: [] },
        "InvalidArgument",
      ],
      [
        { type: "txn", requestId: "t", compare: ops(129), success: [], failure: [] },
        "InvalidArgument",
      ],
      [
        {
          type: "txn",
          requestId: "t",
          compare: [],
          success: [
            { op: "delete", key: "k" },
            { op: "delete", key: "k" },
          ],
          failure: [],
        },
        "InvalidArgument",
      ],
      [
        {
          type: "txn",
          requestId: "t",
          compare: [],
          success: [
            { op: "put", key: "a", value: new Uint8Array(600_000), lease: 0 },
            { op: "put", key: "b", value: new Uint8Array(600_000), lease: 0 },
          ],
          failure: [],
        },
        "MessageTooLarge",
      ],
      [{ type: "lease-grant", requestId: "g", ttlMs: 999 }, "InvalidArgument"],
      [{ type: "lease-revoke", requestId: "g", lease: 0 }, "InvalidArgument"],
      [{ type: "compact", revision: -1 }, "InvalidArgument"],
    ];
    const store = freshShard();
    applyAll(store, [put("0", "k", bytes(1))]);
    let index = 2;
    for (const [command, code] of cases) {
      const label = JSON.stringify(command)?.slice(0, 120);
      assert.throws(
        () => validateKvCommand(command),
        (error) => isBrigadeError(error, code),
        label,
      );
      if (command === null) continue;
      // The same command in the log (as a buggy or newer peer could write it) changes nothing.
      const data = encodeKvCommand(command as KvCommand);
      assert.throws(
        () => decodeKvCommand(data),
        (error) => isBrigadeError(error, code),
        label,
      );
      const result = store.apply(index, data);
      assert.deepEqual(plain(result), { type: "error", code: "InvalidArgument" }, label);
      assert.deepEqual(store.stats(), {
        keys: 1,
        revision: 1,
        compactedRevision: 0,
        appliedIndex: index,
        leases: 0,
      });
      index++;
    }
    const longest = "é".repeat(2048);
    store.apply(index, encodeKvCommand(put("L", longest, bytes(2))));
    assert.equal(store.get(longest)?.key, longest);
    assert.deepEqual(validateKvCommand({ ...ok, extra: 1 }), ok);
    // A lone surrogate has no UTF-8 form (msgpack would carry U+FFFD: another key).
    assert.throws(
      () => validateKvCommand({ ...ok, key: "a\ud800" }),
      (error) => isBrigadeError(error, "InvalidArgument"),
    );
  });

  it("opens one store per shard, and drops a shard's data", () => {
    const group = nextGroup++;
    const store = engine.shard(group);
    assert.equal(engine.shard(group), store);
    applyAll(store, [put("1", "a", bytes(1))]);
    engine.dropShard(group);
    const reopened = engine.shard(group);
    assert.notEqual(reopened, store);
    assert.deepEqual(reopened.stats(), {
      keys: 0,
      revision: 0,
      compactedRevision: 0,
      appliedIndex: 0,
      leases: 0,
    });
    assert.equal(reopened.get("a"), null);
  });
});
