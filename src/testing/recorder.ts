import type { MockRequest } from './script.js';

/** How a mock provider's answer ended. */
export type MockEnd = 'completed' | 'reset' | 'client-closed';

/** One request the mock provider received, and what became of it. */
export interface RecordedRequest extends MockRequest {
  /** 1-based order of arrival. */
  id: number;
  /** When it arrived (`performance.now()`). */
  receivedAt: number;
  /** When its answer ended, for whatever reason. */
  endedAt?: number | undefined;
  /** How its answer ended; `'client-closed'` means the client cancelled the request. */
  end?: MockEnd | undefined;
  /** Resolves when the answer has ended, with this record. */
  ended: Promise<RecordedRequest>;
}

/**
 * The requests a mock provider saw, so a test can prove that an abort reached the provider:
 * `(await recorder.requests[0].ended).end === 'client-closed'`.
 */
export class MockRecorder {
  /** Every request so far, in the order they arrived. */
  readonly requests: RecordedRequest[] = [];
  #waiters: Array<{ count: number; resolve(request: RecordedRequest): void }> = [];

  /** Resolves with the `n`-th request (1-based) once it has arrived. */
  request(n = 1): Promise<RecordedRequest> {
    const existing = this.requests[n - 1];
    if (existing !== undefined) return Promise.resolve(existing);
    return new Promise((resolve) => this.#waiters.push({ count: n, resolve }));
  }

  /** @internal Records an arriving request; call the returned function once when it ends. */
  start(request: MockRequest): { record: RecordedRequest; finish(end: MockEnd): void } {
    let resolveEnded!: (record: RecordedRequest) => void;
    const record: RecordedRequest = {
      ...request,
      id: this.requests.length + 1,
      receivedAt: performance.now(),
      ended: new Promise((resolve) => (resolveEnded = resolve)),
    };
    this.requests.push(record);
    this.#waiters = this.#waiters.filter((waiter) => {
      if (waiter.count !== record.id) return true;
      waiter.resolve(record);
      return false;
    });
    return {
      record,
      finish(end) {
        if (record.end !== undefined) return;
        record.end = end;
        record.endedAt = performance.now();
        resolveEnded(record);
      },
    };
  }

  /** Forgets every recorded request. */
  clear(): void {
    this.requests.length = 0;
  }
}
