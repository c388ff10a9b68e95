// Reading the 'ai-sdk' protocol with the real `ai` package: its SSE parser, its part schema, and
// the reducer that assembles a UIMessage (what useChat renders).
import { parseJsonEventStream, readUIMessageStream, uiMessageChunkSchema, type UIMessage, type UIMessageChunk } from 'ai';

const encoder = new TextEncoder();

/** Bytes as a stream, cut at the given offsets (so parts and multibyte characters are split). */
export function byteStream(text: string, cuts: number[] = []): ReadableStream<Uint8Array> {
  const bytes = encoder.encode(text);
  const points = [...new Set(cuts.filter((cut) => cut > 0 && cut < bytes.length))].sort((a, b) => a - b);
  const pieces: Uint8Array[] = [];
  let from = 0;
  for (const point of [...points, bytes.length]) {
    pieces.push(bytes.slice(from, point));
    from = point;
  }
  return new ReadableStream({
    start(controller) {
      for (const piece of pieces) controller.enqueue(piece);
      controller.close();
    },
  });
}

/** Every part of an SSE body, each validated against `uiMessageChunkSchema` (a part that fails it throws). */
export async function partsOf(stream: ReadableStream<Uint8Array>): Promise<UIMessageChunk[]> {
  const parts: UIMessageChunk[] = [];
  for await (const result of parseJsonEventStream({ stream, schema: uiMessageChunkSchema })) {
    if (!result.success) throw result.error;
    parts.push(result.value);
  }
  return parts;
}

/** The UIMessage the parts assemble into (readUIMessageStream), and the errors it reported. */
export async function messageOf(parts: UIMessageChunk[]): Promise<{ message: UIMessage | undefined; errors: Error[] }> {
  const errors: Error[] = [];
  const stream = new ReadableStream<UIMessageChunk>({
    start(controller) {
      for (const part of parts) controller.enqueue(part);
      controller.close();
    },
  });
  let message: UIMessage | undefined;
  for await (const snapshot of readUIMessageStream({ stream, onError: (error) => errors.push(error as Error) })) message = snapshot;
  return { message, errors };
}

/** The parts a UIMessage has, without the step markers and the fields the reducer leaves undefined. */
export function contentParts(message: UIMessage | undefined): unknown[] {
  return (message?.parts ?? [])
    .filter((part) => part.type !== 'step-start')
    .map((part) => Object.fromEntries(Object.entries(part).filter(([, value]) => value !== undefined)));
}
