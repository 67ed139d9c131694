/**
 * @module The in-memory Raft log with its stable/unstable split and commit index (after
 * etcd `log.go` / `log_unstable.go`, without compaction yet: index i is `entries[i - 1]`).
 * Pure: the driver persists what `unstableEntries()` returns, then calls `stableTo`.
 */
import { assert } from "../../lib/assert.js";
import { asIndex, asTerm, type Entry, type LogIndex, type Term } from "./types.js";

export class RaftLog {
  #entries: Entry[] = [];
  /** First index not yet handed to the driver for persistence. */
  #unstableFrom: LogIndex;
  #committed: LogIndex = asIndex(0);
  /** Bumped on every change; with `#changes` lets checkers re-read only what changed. */
  #version = 0;
  /** (version, first index written) of the last few changes, oldest first. */
  readonly #changes: { readonly version: number; readonly from: LogIndex }[] = [];

  constructor(stable: readonly Entry[] = [], committed: LogIndex = asIndex(0)) {
    stable.forEach((entry, position) => {
      assert(entry.index === position + 1, "recovered entries must be contiguous from 1");
      if (position > 0) assert(entry.term >= stable[position - 1]!.term, "terms never decrease");
    });
    this.#entries = [...stable];
    this.#unstableFrom = asIndex(stable.length + 1);
    assert(committed <= stable.length, "recovered commit beyond the recovered log");
    this.#committed = committed;
  }

  get committed(): LogIndex {
    return this.#committed;
  }

  get version(): number {
    return this.#version;
  }

  lastIndex(): LogIndex {
    return asIndex(this.#entries.length);
  }

  lastTerm(): Term {
    return this.#entries.at(-1)?.term ?? asTerm(0);
  }

  /** Term of the entry at `index`; 0 for index 0; undefined beyond the last index. */
  term(index: number): Term | undefined {
    if (index === 0) return asTerm(0);
    return this.#entries[index - 1]?.term;
  }

  entry(index: number): Entry | undefined {
    return this.#entries[index - 1];
  }

  /** Entries in [from, toInclusive], capped at `countMax` and `bytesMax` (at least one). */
  slice(from: number, toInclusive: number, countMax: number, bytesMax: number): Entry[] {
    assert(from >= 1, "slice from index 0");
    const result: Entry[] = [];
    let bytes = 0;
    for (let index = from; index <= toInclusive && index <= this.#entries.length; index++) {
      const entry = this.#entries[index - 1]!;
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
    for (const entry of entries) this.#entries.push(entry);
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
        this.#entries.length = entry.index - 1;
        if (this.#unstableFrom > entry.index) this.#unstableFrom = entry.index;
      }
      for (const rest of entries.slice(position)) this.#entries.push(rest);
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
    let at = Math.min(index, this.lastIndex());
    while (at > 0 && (this.term(at) ?? 0) > term) at--;
    return { index: asIndex(at), term: this.term(at) ?? asTerm(0) };
  }

  commitTo(index: LogIndex): boolean {
    if (index <= this.#committed) return false;
    assert(index <= this.lastIndex(), `commit ${index} beyond last index ${this.lastIndex()}`);
    this.#committed = index;
    return true;
  }

  unstableEntries(): Entry[] {
    return this.#entries.slice(this.#unstableFrom - 1);
  }

  hasUnstable(): boolean {
    return this.#unstableFrom <= this.lastIndex();
  }

  /** The driver persisted everything up to `index` (the last entry of a Ready). */
  stableTo(index: LogIndex): void {
    assert(index <= this.lastIndex(), "stableTo beyond the log");
    if (index >= this.#unstableFrom) this.#unstableFrom = asIndex(index + 1);
  }

  /** The lowest index changed since `version`, or null if nothing changed; 1 if unknown. */
  changedSince(version: number): LogIndex | null {
    if (version === this.#version) return null;
    const newer = this.#changes.filter((change) => change.version > version);
    if (newer.length === 0 || newer[0]!.version !== version + 1) return asIndex(1);
    return asIndex(Math.min(...newer.map((change) => change.from)));
  }

  #noteChange(from: LogIndex): void {
    this.#version++;
    this.#changes.push({ version: this.#version, from });
    if (this.#changes.length > 32) this.#changes.shift();
  }
}
