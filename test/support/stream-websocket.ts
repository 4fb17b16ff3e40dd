import { WebSocket } from "ws";

/** What `POST /streams/init` and `/streams/{id}/ticket` answer. */
export interface Ticketed {
  readonly stream_id: string;
  readonly ws_url: string;
  readonly ticket_expires_at: string;
  readonly sse_url?: string;
  readonly subscribe_url?: string;
  readonly recommended_chunk_bytes?: number;
}

/** POSTs JSON to a plain-HTTP stream endpoint as `key`; the status and the parsed body. */
export async function postJson(url: string, key: string | undefined, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

export async function initStream(baseUrl: string, key: string, body: Record<string, unknown>): Promise<Ticketed> {
  const { status, body: answer } = await postJson(`${baseUrl}/streams/init`, key, body);
  if (status !== 200) throw new Error(`POST /streams/init answered ${status}: ${JSON.stringify(answer)}`);
  return answer as unknown as Ticketed;
}

export async function ticketFor(baseUrl: string, key: string, streamId: string): Promise<Ticketed> {
  const { status, body } = await postJson(`${baseUrl}/streams/${streamId}/ticket`, key, {});
  if (status !== 200) throw new Error(`POST /streams/${streamId}/ticket answered ${status}: ${JSON.stringify(body)}`);
  return body as unknown as Ticketed;
}

export type ReceivedFrame = { readonly text: Record<string, unknown> } | { readonly binary: Buffer };

/** A real `ws` client that records every frame it receives and how the server closed. */
export class StreamSocket {
  readonly ws: WebSocket;
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;
  private readonly frames: ReceivedFrame[] = [];
  private waiter: (() => void) | undefined;

  constructor(url: string, options: { key?: string; autoPong?: boolean } = {}) {
    this.ws = new WebSocket(url, {
      headers: options.key ? { authorization: `Bearer ${options.key}` } : {},
      autoPong: options.autoPong ?? true,
    });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once("open", () => resolve());
      this.ws.once("error", reject);
    });
    this.closed = new Promise((resolve) => {
      this.ws.once("close", (code, reason) => {
        this.waiter?.();
        resolve({ code, reason: reason.toString() });
      });
    });
    this.ws.on("message", (data: Buffer, isBinary) => {
      this.frames.push(isBinary ? { binary: data } : { text: JSON.parse(data.toString()) as Record<string, unknown> });
      this.waiter?.();
    });
  }

  static async open(url: string, options: { key?: string; autoPong?: boolean } = {}): Promise<StreamSocket> {
    const socket = new StreamSocket(url, options);
    await socket.opened;
    return socket;
  }

  sendJson(value: unknown): void {
    this.ws.send(JSON.stringify(value));
  }

  sendBinary(bytes: Uint8Array): void {
    this.ws.send(bytes, { binary: true });
  }

  /** The next frame received, waiting up to `ms`. */
  async next(ms = 5_000): Promise<ReceivedFrame> {
    const deadline = Date.now() + ms;
    while (this.frames.length === 0) {
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error("the socket closed with no further frame");
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no frame within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return this.frames.shift()!;
  }

  /** The next text frame, which must be one. */
  async nextText(ms?: number): Promise<Record<string, unknown>> {
    const frame = await this.next(ms);
    if (!("text" in frame)) throw new Error(`expected a text frame, got ${frame.binary.length} binary bytes`);
    return frame.text;
  }

  /** Text frames until one of `type` arrives (acks in between are skipped); that one. */
  async until(type: string, ms?: number): Promise<Record<string, unknown>> {
    for (;;) {
      const frame = await this.next(ms);
      if ("text" in frame && frame.text.type === type) return frame.text;
    }
  }

  /** Everything received until the server closed, and the close. */
  async drain(ms = 10_000): Promise<{ frames: ReceivedFrame[]; close: { code: number; reason: string } }> {
    const close = await Promise.race([this.closed, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`not closed within ${ms} ms`)), ms))]);
    return { frames: this.frames.splice(0), close };
  }
}
