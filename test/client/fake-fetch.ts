import type { FetchLike } from 'tokenrelay/client';

/** How a fake response delivers its body. */
export type Split = 'whole' | 'bytes';

/** One answer of {@link fakeFetch}. */
export interface FakeAnswer {
  status?: number;
  headers?: Record<string, string>;
  /** Text (UTF-8 encoded) or raw bytes. */
  body?: string | Uint8Array;
  /** Keep the body open after its bytes (until the client cancels it). */
  hang?: boolean;
}

/** A request the fake received. */
export interface FakeRequest {
  url: string;
  method: string;
  headers: Headers;
  body: string | undefined;
  /** Resolves when the client cancelled the body (closed the connection). */
  cancelled: Promise<void>;
}

/**
 * A `fetch` that answers from a script without a network, delivering each body whole or one
 * byte per read, as a network may.
 */
export function fakeFetch(answer: (request: FakeRequest, n: number) => FakeAnswer, split: Split = 'whole') {
  const requests: FakeRequest[] = [];
  const fetch: FetchLike = async (input, init) => {
    let cancel!: () => void;
    const request: FakeRequest = {
      url: String(input),
      method: init.method ?? 'GET',
      headers: new Headers(init.headers),
      body: typeof init.body === 'string' ? init.body : undefined,
      cancelled: new Promise((resolve) => (cancel = resolve)),
    };
    requests.push(request);
    const spec = answer(request, requests.length);
    const bytes = typeof spec.body === 'string' ? new TextEncoder().encode(spec.body) : (spec.body ?? new Uint8Array());
    const pieces = split === 'bytes' ? Array.from(bytes, (byte) => Uint8Array.of(byte)) : bytes.length > 0 ? [bytes] : [];
    const status = spec.status ?? 200;
    const body =
      status === 204
        ? null
        : new ReadableStream<Uint8Array>({
            pull(controller) {
              const piece = pieces.shift();
              if (piece !== undefined) controller.enqueue(piece);
              else if (spec.hang === true) return new Promise<void>(() => {});
              else controller.close();
              return undefined;
            },
            cancel() {
              cancel();
            },
          });
    return new Response(body, {
      status,
      headers: { 'content-type': 'text/event-stream', ...spec.headers },
    });
  };
  return { fetch, requests };
}

/** A byte string (what `Headers` holds) read back as UTF-8. */
export function fromByteString(value: string): string {
  return new TextDecoder().decode(Uint8Array.from(value, (char) => char.charCodeAt(0)));
}
