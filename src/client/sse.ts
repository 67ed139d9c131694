/**
 * @module A Server-Sent Events parser (the WHATWG event-stream format): feed it text as it
 * arrives, in chunks of any size, and it returns each complete event. Lines end with CRLF,
 * LF or CR; lines starting with ":" are comments (the server's pings); a blank line ends
 * an event.
 */

export interface SseEvent {
  /** The `event:` field, "message" when absent. */
  readonly event: string;
  /** The `data:` lines joined with "\n". */
  readonly data: string;
  /** The last `id:` seen on the stream so far (the resume token), or null. */
  readonly id: string | null;
}

export class SseParser {
  #buffer = "";
  /** A chunk ended with CR: a LF starting the next chunk belongs to the same line end. */
  #pendingCr = false;
  #event = "";
  #data: string[] = [];
  #hasData = false;
  #lastId: string | null = null;
  #sawFirstChunk = false;

  get lastId(): string | null {
    return this.#lastId;
  }

  /** Parses `chunk` and returns the events it completed. */
  push(chunk: string): SseEvent[] {
    let text = chunk;
    if (!this.#sawFirstChunk && text.length > 0) {
      this.#sawFirstChunk = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    if (this.#pendingCr && text.startsWith("\n")) text = text.slice(1);
    this.#pendingCr = false;
    this.#buffer += text;
    const events: SseEvent[] = [];
    let start = 0;
    for (let index = 0; index < this.#buffer.length; index++) {
      const char = this.#buffer.charCodeAt(index);
      if (char !== 10 && char !== 13) continue;
      const line = this.#buffer.slice(start, index);
      if (char === 13) {
        if (index + 1 < this.#buffer.length) {
          if (this.#buffer.charCodeAt(index + 1) === 10) index++;
        } else {
          this.#pendingCr = true;
        }
      }
      start = index + 1;
      const event = this.#line(line);
      if (event !== null) events.push(event);
    }
    this.#buffer = this.#buffer.slice(start);
    return events;
  }

  #line(line: string): SseEvent | null {
    if (line.length === 0) return this.#dispatch();
    if (line.startsWith(":")) return null;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    switch (field) {
      case "event":
        this.#event = value;
        break;
      case "data":
        this.#data.push(value);
        this.#hasData = true;
        break;
      case "id":
        if (!value.includes("\0")) this.#lastId = value;
        break;
      default:
        // "retry" and unknown fields: ignored (the client has its own backoff).
        break;
    }
    return null;
  }

  #dispatch(): SseEvent | null {
    const event = this.#hasData
      ? { event: this.#event || "message", data: this.#data.join("\n"), id: this.#lastId }
      : null;
    this.#event = "";
    this.#data = [];
    this.#hasData = false;
    return event;
  }
}
