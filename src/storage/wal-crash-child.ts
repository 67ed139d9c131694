/**
 * @module Test fixture for `wal-crash.test.ts`: a process that appends to a WAL as fast as it
 * can and reports every acknowledgement, so the parent can SIGKILL it mid-stream and check
 * that nothing acknowledged was lost.
 *
 * Usage: node dist/storage/wal-crash-child.js <directory> <appenders>
 * Prints "ready" once the WAL is open, then one line per acknowledged append:
 * "ack <appender> <counter> <firstSequence> <recordCount>". Appender a's append n holds
 * (n % 3) + 1 records of group a, payload "a:n:j" for its j-th record. Each appender waits for
 * its previous append before the next, so several appends are always in flight together and
 * share fsyncs. stdout to a pipe is synchronous on Linux, so a line the parent reads was
 * written after the acknowledgement and before the kill.
 */
import { WriteAheadLog } from "./wal.js";

const [directory, appendersText] = process.argv.slice(2);
if (directory === undefined || appendersText === undefined) {
  process.stderr.write("usage: wal-crash-child <directory> <appenders>\n");
  process.exit(2);
}

/** Small segments so the kill often lands near a rotation. */
const wal = await WriteAheadLog.open(directory, {
  segmentBytesMax: 8192,
  batchBytesMax: 4096,
  recordBytesMax: 1024,
  pendingBytesMax: 65_536,
});
process.stdout.write(`ready ${wal.nextSequence}\n`);
const encoder = new TextEncoder();

async function appendForever(appender: number): Promise<never> {
  for (let counter = 0; ; counter++) {
    const count = (counter % 3) + 1;
    const records = Array.from({ length: count }, (_, part) => ({
      type: "entries" as const,
      groupId: appender,
      payload: encoder.encode(
        `${appender}:${counter}:${part}:`.padEnd(20 + ((counter * 7) % 60), "x"),
      ),
    }));
    const { firstSequence } = await wal.append(records);
    process.stdout.write(`ack ${appender} ${counter} ${firstSequence} ${count}\n`);
  }
}

await Promise.all(
  Array.from({ length: Number(appendersText) }, (_, index) => appendForever(index)),
);
