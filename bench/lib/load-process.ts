/**
 * The load process of the server benchmarks: the mock providers and the clients, together (one
 * clock for emit and receipt, for disconnect and provider close) and apart from the server,
 * whose CPU time is the measure. Forked with `forkChild<LoadApi>(new URL('./lib/load-process.ts', import.meta.url))`.
 */
import { startMockProvider, type MockProvider } from '../../src/testing/mock-provider.ts';
import type { MockScript } from '../../src/testing/script.ts';
import { serveParent } from './child-process.ts';
import type { MockProviderURLs } from './provider-servers.ts';
import { startFastProvider, type FastProvider, type FastProviderMode, type ProviderStream } from './fast-provider.ts';
import { abortClients, readStreams, type AbortClientsOptions, type ReadStreamsOptions } from './stream-clients.ts';

let fast: FastProvider | undefined;
let mock: MockProvider | undefined;

const api = {
  /** Starts the fast provider (fast-provider.ts); resolves with its `baseURL` for the `openai` client. */
  async startFastProvider(mode: FastProviderMode): Promise<string> {
    fast ??= await startFastProvider();
    fast.configure(mode);
    return fast.openaiBaseURL;
  },
  configureFastProvider(mode: FastProviderMode): void {
    if (fast === undefined) throw new Error('Start the fast provider first');
    fast.configure(mode);
  },
  /** The fast provider's streams since the last call, and forgets them. */
  takeProviderStreams(): ProviderStream[] {
    const streams = [...(fast?.streams ?? [])];
    fast?.clear();
    return streams;
  },
  /** Starts the testing kit's `startMockProvider` (its recorder times disconnects). */
  async startMockProvider(script: MockScript): Promise<string> {
    mock ??= await startMockProvider({ script });
    mock.setScript(script);
    return mock.openaiBaseURL;
  },
  /** Where the started mock provider serves Gemini, Bedrock and Mistral (provider-servers.ts). */
  mockProviderURLs(): MockProviderURLs {
    if (mock === undefined) throw new Error('Start the mock provider first');
    return { googleBaseURL: mock.googleBaseURL, bedrockEndpoint: mock.bedrockEndpoint, mistralServerURL: mock.mistralServerURL };
  },
  readStreams: (options: ReadStreamsOptions) => readStreams(options),
  abortClients(options: AbortClientsOptions) {
    if (mock === undefined) throw new Error('Start the mock provider first');
    mock.clear();
    return abortClients(mock, options);
  },
};

export type LoadApi = typeof api;

serveParent(api);
