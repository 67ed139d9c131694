/**
 * @module The in-memory Raft log with its stable/unstable split and commit index (after
 * etcd `log.go` / `log_unstable.go`). Pure: the driver persists what `unstableEntries()`
 * returns, then calls `stableTo`.
 *
 * Compaction: the log holds entries (offset, lastIndex]; everything up to `offset` lives in
 * a snapshot, and only the term of entry `offset` is kept (for the consistency check of
 * the next append). Index i is `entries[i - offset - 1]`.
 */
import { assert } from "../../lib/assert.js";
import { asIndex, asTerm, type Entry, type LogIndex, type Term } from "./types.js";

export class RaftLog {
  #entries: Entry[] = [];
  /** Index of the last compacted entry (0: nothing compacted), and its term. */
  #offset: LogIndex;
  #offsetTerm: Term;
  /** Indexes of the `config` entries in the log, ascending (the configuration is the last). */
  #configIndexes: LogIndex[] = [];
  /** First index not yet handed to the driver for persistence. */
  #unstableFrom: LogIndex;
  #committed: LogIndex = asIndex(0);
  /** Bumped on every change; with `#changes` lets checkers re-read only what changed. */
  #version = 0;
  /** (version, first index written) of the last few changes, oldest first. */
  readonly #changes: { readonly version: number; readonly from: LogIndex }[] = [];

  /**
   * `stable` are the recovered entries after `offset` (the recovered snapshot's index, or 0);
   * entries at or below `offset` are ignored (a WAL deletes whole segments, so it may
   * still hold some).
   */
  constructor(
    stable: readonly Entry[] = [],
    committed: LogIndex = asIndex(0),
    offset: { index: LogIndex; term: Term } = { index: asIndex(0), term: asTerm(0) },
  ) {
    const kept = stable.filter((entry) => entry.index > offset.index);
    kept.forEach((entry, position) => {
      assert(entry.index === offset.index + position + 1, "recovered entries must be contiguous");
      const previous = position > 0 ? kept[position - 1]!.term : offset.term;
      assert(entry.term >= previous, "terms never decrease");
    });
    this.#entries = kept;
    this.#configIndexes = kept.filter(isConfig).map((entry) => entry.index);
    this.#offset = offset.index;
    this.#offsetTerm = offset.term;
    this.#unstableFrom = asIndex(offset.index + kept.length + 1);
    assert(committed <= this.lastIndex(), "recovered commit beyond the recovered log");
    this.#committed = asIndex(Math.max(committed, offset.index));
  }

  get committed(): LogIndex {
    return this.#committed;
  }

  get version(): number {
    return this.#version;
  }

  /** The last compacted index: entries up to it are only in the snapshot. */
  get offset(): LogIndex {
    return this.#offset;
  }

  /** The first index still held in the log. */
  firstIndex(): LogIndex {
    return asIndex(this.#offset + 1);
  }

  lastIndex(): LogIndex {
    return asIndex(this.#offset + this.#entries.length);
  }

  lastTerm(): Term {
    return this.#entries.at(-1)?.term ?? this.#offsetTerm;
  }

  /**
   * Term of the entry at `index`: the snapshot's term at the offset (0 for index 0);
   * undefined when compacted away (below the offset) or beyond the last index.
   */
  term(index: number): Term | undefined {
    if (index === this.#offset) return this.#offsetTerm;
    if (index < this.#offset) return undefined;
    return this.#entries[index - this.#offset - 1]?.term;
  }

  /** The entry at `index`; undefined when compacted away or beyond the last index. */
  entry(index: number): Entry | undefined {
    if (index <= this.#offset) return undefined;
    return this.#entries[index - this.#offset - 1];
  }

  /** Entries in [from, toInclusive], capped at `countMax` and `bytesMax` (at least one). */
  slice(from: number, toInclusive: number, countMax: number, bytesMax: number): Entry[] {
    assert(from > this.#offset, `slice from ${from}, compacted up to ${this.#offset}`);
    const result: Entry[] = [];
    let bytes = 0;
    for (let index = from; index <= toInclusive && index <= this.lastIndex(); index++) {
      const entry = this.#entries[index - this.#offset - 1]!;
      if (result.length >= countMax) break;
      if (result.length > 0 && bytes + entry.data.length > bytesMax) break;
      bytes += entry.data.length;
      result.push(entry);
    }
    return result;
  }

  /** Is a log ending at (lastIndex, lastTerm) at least as up to date as ours? (paper §5.4.1) */
  isUpToDate(lastIndex: LogIndex, lastTerm: Term): boolean {
    return (
      lastTerm > this.lastTerm() || (lastTerm === this.lastTerm() && lastIndex >= this.lastIndex())
    );
  }

  /** The leader appends its own new entries at the end. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    assert(entries[0]!.index === this.lastIndex() + 1, "append must extend the log");
    for (const entry of entries) {
      this.#entries.push(entry);
      if (isConfig(entry)) this.#configIndexes.push(entry.index);
    }
    this.#noteChange(entries[0]!.index);
  }

  /**
   * The follower's side of AppendEntries (paper Figure 2, receiver rules 2-5): null when the
   * log has no entry (prevIndex, prevTerm); otherwise the last index now known to match the
   * leader. Only a conflicting suffix is truncated: a stale or duplicated append whose
   * entries are already present changes nothing (truncating there would lose acknowledged
   * entries).
   */
  maybeAppend(
    prevIndex: LogIndex,
    prevTerm: Term,
    leaderCommit: LogIndex,
    entries: readonly Entry[],
  ): LogIndex | null {
    if (this.term(prevIndex) !== prevTerm) return null;
    const lastNew = asIndex(prevIndex + entries.length);
    for (const [position, entry] of entries.entries()) {
      assert(entry.index === prevIndex + 1 + position, "entries must be contiguous");
      const existing = this.term(entry.index);
      if (existing === entry.term) continue;
      if (existing !== undefined) {
        assert(entry.index > this.#committed, "a committed entry conflicts with the leader");
        this.#entries.length = entry.index - this.#offset - 1;
        this.#configIndexes = this.#configIndexes.filter((at) => at < entry.index);
        if (this.#unstableFrom > entry.index) this.#unstableFrom = entry.index;
      }
      for (const rest of entries.slice(position)) {
        this.#entries.push(rest);
        if (isConfig(rest)) this.#configIndexes.push(rest.index);
      }
      this.#noteChange(entry.index);
      break;
    }
    this.commitTo(asIndex(Math.min(leaderCommit, lastNew)));
    return lastNew;
  }

  /**
   * Fast backtracking (etcd `findConflictByTerm`): the largest index <= `index` whose term is
   * <= `term`, so one round trip skips every entry of a term the other side does not have.
   */
  findConflictByTerm(index: LogIndex, term: Term): { index: LogIndex; term: Term } {
    let at = Math.max(Math.min(index, this.lastIndex()), this.#offset);
    while (at > this.#offset && (this.term(at) ?? 0) > term) at--;
    return { index: asIndex(at), term: this.term(at) ?? asTerm(0) };
  }

  commitTo(index: LogIndex): boolean {
    if (index <= this.#committed) return false;
    assert(index <= this.lastIndex(), `commit ${index} beyond last index ${this.lastIndex()}`);
    this.#committed = index;
    return true;
  }

  unstableEntries(): Entry[] {
    return this.#entries.slice(this.#unstableFrom - this.#offset - 1);
  }

  /** The last index handed out for persistence (and so durable once that Ready is advanced). */
  lastStableIndex(): LogIndex {
    return asIndex(Math.min(this.#unstableFrom - 1, this.lastIndex()));
  }

  hasUnstable(): boolean {
    return this.#unstableFrom <= this.lastIndex();
  }

  /** The driver persisted everything up to `index` (the last entry of a Ready). */
  stableTo(index: LogIndex): void {
    assert(index <= this.lastIndex(), "stableTo beyond the log");
    if (index >= this.#unstableFrom) this.#unstableFrom = asIndex(index + 1);
  }

  /**
   * Drops entries up to `index` (at most the commit index): a snapshot now stands for them.
   * Entries not yet persisted are never dropped (they are committed, so persisted already).
   */
  compactTo(index: LogIndex): void {
    if (index <= this.#offset) return;
    assert(index <= this.#committed, "compacting past the commit index");
    assert(index < this.#unstableFrom, "compacting entries not yet persisted");
    this.#offsetTerm = this.term(index)!;
    this.#entries = this.#entries.slice(index - this.#offset);
    this.#offset = index;
    this.#configIndexes = this.#configIndexes.filter((at) => at > index);
  }

  /**
   * Replaces the whole log by a snapshot's position (a follower installing the leader's
   * snapshot): nothing after it is kept, because nothing after it is known to match.
   */
  restore(index: LogIndex, term: Term): void {
    assert(index > this.#committed, "restoring a snapshot the log already committed");
    this.#entries = [];
    this.#configIndexes = [];
    this.#offset = index;
    this.#offsetTerm = term;
    this.#committed = index;
    this.#unstableFrom = asIndex(index + 1);
    this.#noteChange(asIndex(index + 1));
  }

  /** The last `config` entry at or below `atOrBelow` still in the log; undefined if none. */
  lastConfigEntry(atOrBelow: number = this.lastIndex()): Entry | undefined {
    for (let position = this.#configIndexes.length - 1; position >= 0; position--) {
      const index = this.#configIndexes[position]!;
      if (index <= atOrBelow) return this.entry(index);
    }
    return undefined;
  }

  /** The lowest index changed since `version`, or null if nothing changed; the first index if unknown. */
  changedSince(version: number): LogIndex | null {
    if (version === this.#version) return null;
    const newer = this.#changes.filter((change) => change.version > version);
    if (newer.length === 0 || newer[0]!.version !== version + 1) return this.firstIndex();
    return asIndex(Math.max(this.firstIndex(), Math.min(...newer.map((change) => change.from))));
  }

  #noteChange(from: LogIndex): void {
    this.#version++;
    this.#changes.push({ version: this.#version, from });
    if (this.#changes.length > 32) this.#changes.shift();
  }
}

function isConfig(entry: Entry): boolean {
  return entry.kind === "config";
}
