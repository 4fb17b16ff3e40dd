/**
 * Publishes the microphone as a live audio stream over the WebSocket view of streams
 * (docs/websocket-streams.md): Connect cannot client-stream from a browser, a WebSocket can.
 * MediaRecorder's chunks are numbered (client_seq) and kept until acknowledged, so after a dropped
 * connection the publisher reconnects with a fresh ticket, learns from the first ack what arrived,
 * and resends only the rest; the mesh drops any duplicate.
 */

/** What `POST /streams/init` and `POST /streams/{id}/ticket` answer (the fields used here). */
interface Ticketed {
  readonly stream_id: string;
  readonly ws_url: string;
}

export interface MicrophonePublisher {
  readonly streamId: string;
  /** Stops recording, sends what is left, ends the stream; resolves once the mesh closed it. */
  stop(): Promise<void>;
}

export interface MicrophoneOptions {
  readonly apiKey: string;
  /** Origin of the mesh; the page's own by default. */
  readonly baseUrl?: string;
  /** How often MediaRecorder hands over a chunk: small keeps the stream live. */
  readonly timesliceMs?: number;
  /** Progress and advice for the user (acknowledged bytes, reconnects, bitrate advice). */
  readonly onStatus?: (message: string) => void;
}

const MIME_TYPE = "audio/webm;codecs=opus";
const RECONNECT_MS = 500;

export async function publishMicrophone(options: MicrophoneOptions): Promise<MicrophonePublisher> {
  const baseUrl = options.baseUrl ?? location.origin;
  const status = options.onStatus ?? (() => undefined);
  if (!MediaRecorder.isTypeSupported(MIME_TYPE)) throw new Error(`this browser cannot record ${MIME_TYPE}`);
  const media = await navigator.mediaDevices.getUserMedia({ audio: true });
  const init = await post<Ticketed>(`${baseUrl}/streams/init`, options.apiKey, {
    payload_type: "PIN_TYPE_AUDIO",
    mime_type: MIME_TYPE,
    labels: { source: "microphone" },
  }).catch((error: unknown) => {
    for (const track of media.getTracks()) track.stop();
    throw error;
  });
  const streamId = init.stream_id;
  /** Chunks not yet acknowledged, oldest first. */
  const unacked: { readonly clientSeq: number; readonly bytes: ArrayBuffer }[] = [];
  let nextClientSeq = 1;
  let ackedBytes = 0;
  let reconnects = 0;
  let ending = false;
  let socket: WebSocket | undefined;
  /** The socket once its first ack arrived and the backlog was resent: new chunks go straight to it. */
  let live: WebSocket | undefined;
  const recorder = new MediaRecorder(media, { mimeType: MIME_TYPE });
  let ended: (() => void) | undefined;
  let failed: ((error: Error) => void) | undefined;
  const done = new Promise<void>((resolve, reject) => {
    ended = resolve;
    failed = (error) => {
      // Nothing more can be published: stop using the microphone now, not at the user's next click.
      if (recorder.state !== "inactive") recorder.stop();
      for (const track of media.getTracks()) track.stop();
      status(`Publishing ${streamId} stopped: ${error.message}`);
      reject(error);
    };
  });
  // Reported through `status` when it happens; `stop()` rethrows it.
  done.catch(() => undefined);

  const sendChunk = (ws: WebSocket, chunk: (typeof unacked)[number]) => {
    ws.send(JSON.stringify({ type: "stream_data", client_seq: chunk.clientSeq }));
    ws.send(chunk.bytes);
  };

  const connect = (wsUrl: string) => {
    const ws = new WebSocket(wsUrl);
    ws.binaryType = "arraybuffer";
    socket = ws;
    live = undefined;
    ws.onopen = () => ws.send(JSON.stringify({ type: "stream_start" }));
    ws.onmessage = (event: MessageEvent<string | ArrayBuffer>) => {
      if (typeof event.data !== "string") return;
      const frame = JSON.parse(event.data) as { type: string; last_client_seq?: number; suggested_bits_per_second?: number; message?: string };
      if (frame.type === "ack") {
        const acked = frame.last_client_seq ?? 0;
        while (unacked.length > 0 && (unacked[0]?.clientSeq ?? 0) <= acked) ackedBytes += unacked.shift()?.bytes.byteLength ?? 0;
        if (live !== ws) {
          // The first ack says where this connection resumes: resend whatever it does not cover,
          // in order, before any newer chunk (the mesh keeps only increasing client_seqs).
          live = ws;
          for (const chunk of unacked) sendChunk(ws, chunk);
          if (ending) ws.send(JSON.stringify({ type: "stream_end" }));
        }
        status(`Publishing ${streamId}: ${ackedBytes} bytes acknowledged${reconnects > 0 ? ` after ${reconnects} reconnect(s)` : ""}.`);
      } else if (frame.type === "adapt_bitrate") {
        status(`The mesh suggests at most ${frame.suggested_bits_per_second ?? 0} bit/s for ${streamId}.`);
      } else if (frame.type === "error") {
        status(`Publishing ${streamId} failed: ${frame.message ?? ""}`);
      }
    };
    ws.onclose = (event) => {
      if (socket !== ws) return;
      if (event.code === 1000) {
        ended?.();
        return;
      }
      // 4000-4999 are the mesh refusing something (permissions, a bad frame): retrying will not help.
      if (event.code >= 4000) {
        failed?.(new Error(`the mesh closed the stream's WebSocket with ${event.code}: ${event.reason}`));
        return;
      }
      reconnects++;
      status(`Connection to ${streamId} lost (${event.code}); reconnecting…`);
      setTimeout(() => {
        post<Ticketed>(`${baseUrl}/streams/${encodeURIComponent(streamId)}/ticket`, options.apiKey, {})
          .then((ticket) => connect(ticket.ws_url))
          .catch((error: unknown) => failed?.(error instanceof Error ? error : new Error(String(error))));
      }, RECONNECT_MS);
    };
  };

  // Blobs are read one after another, so chunks go out in recording order.
  let reading = Promise.resolve();
  recorder.ondataavailable = (event) => {
    if (event.data.size === 0) return;
    const clientSeq = nextClientSeq++;
    reading = reading.then(async () => {
      const chunk = { clientSeq, bytes: await event.data.arrayBuffer() };
      unacked.push(chunk);
      if (live?.readyState === WebSocket.OPEN) sendChunk(live, chunk);
    });
  };
  const stopped = new Promise<void>((resolve) => recorder.addEventListener("stop", () => resolve(), { once: true }));
  connect(init.ws_url);
  recorder.start(options.timesliceMs ?? 250);
  status(`Publishing the microphone as stream ${streamId}.`);

  return {
    streamId,
    async stop() {
      if (recorder.state !== "inactive") recorder.stop();
      for (const track of media.getTracks()) track.stop();
      await stopped;
      await reading;
      ending = true;
      if (live?.readyState === WebSocket.OPEN) live.send(JSON.stringify({ type: "stream_end" }));
      await done;
      status(`Stream ${streamId} ended after ${ackedBytes} bytes.`);
    },
  };
}

async function post<T>(url: string, apiKey: string, body: unknown): Promise<T> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}` },
    body: JSON.stringify(body),
  });
  const answer = (await response.json()) as T & { message?: string };
  if (!response.ok) throw new Error(`POST ${new URL(url).pathname} answered ${response.status}: ${answer.message ?? ""}`);
  return answer;
}
