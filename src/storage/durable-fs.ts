/**
 * @module The two file-system steps durability depends on that node:fs does not spell out:
 * writing ALL of a buffer at a position (a write may be short), and fsyncing a directory so
 * that a created, renamed or deleted entry survives a crash (fsyncing the file alone does
 * not make its name durable: see fsync(2), "Calling fsync() does not necessarily ensure that
 * the entry in the directory containing the file has also reached disk").
 */
import { type FileHandle, open } from "node:fs/promises";
import { assert } from "../lib/assert.js";

/** Writes every byte of `buffer` to `handle` starting at file offset `position`. */
export async function writeFully(
  handle: FileHandle,
  buffer: Uint8Array,
  position: number,
): Promise<void> {
  let written = 0;
  while (written < buffer.length) {
    const { bytesWritten } = await handle.write(
      buffer,
      written,
      buffer.length - written,
      position + written,
    );
    assert(bytesWritten > 0, "write made no progress");
    written += bytesWritten;
  }
}

/** Makes the directory's entries (created, renamed or removed files) durable. */
export async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
