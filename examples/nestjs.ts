// A NestJS 11+ chat controller with `tokenrelay/nestjs`, on Nest's Express platform.
//   npm run example:nestjs   then either
//   curl -N 'localhost:3006/chat/stream?q=hi'              an @Sse() route: Nest frames the events
//   curl -N -X POST localhost:3006/chat -H 'content-type: application/json' -d '{"prompt":"hi"}'
//                                                          an @Post() route: tokenrelay's own pump
//
// Node runs this file with no build step, and Node does not run decorators yet, so they are
// applied below the class the way tsc compiles them. In your app, write them as decorators:
//
//   @Controller()
//   export class ChatController {
//     constructor(@Inject(LLM) private readonly llm: Llm) {}
//
//     @Sse('chat/stream')
//     stream(@Query('q') q?: string): Observable<MessageEvent> { … }
//
//     @Post('chat')
//     async chat(@Req() req: Request, @Res() res: Response, @Body() body: unknown): Promise<void> { … }
//   }
import 'reflect-metadata';
import { Body, Controller, Inject, Module, Post, Query, Req, Res, Sse, type DynamicModule, type MessageEvent } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { Request, Response } from 'express';
import type { Observable } from 'rxjs';
// `tokenrelay/nestjs` in your app.
import { closeAllStreams, sendSSE, sseObservable } from 'tokenrelay/nestjs';
import { createLlm, messagesFrom, type Llm } from './shared/llm.ts';

/** The injection token of the model. */
export const LLM = Symbol('LLM');

export class ChatController {
  readonly #llm: Llm;

  constructor(llm: Llm) {
    this.#llm = llm;
  }

  /**
   * `GET /chat/stream?q=…`: what an `@Sse()` handler returns. Nest writes each event; when the
   * client leaves, Nest unsubscribes and the provider request is aborted.
   */
  stream(q: string | undefined): Observable<MessageEvent> {
    return sseObservable((signal) => this.#llm(messagesFrom({ prompt: q }), signal), {
      timeout: { firstTokenMs: 30_000, idleMs: 30_000 },
      logger: console,
    });
  }

  /**
   * `POST /chat` with `{ messages }` or `{ prompt }`: with `@Res()` the response is ours, written by
   * the same pump as `tokenrelay/node` (socket backpressure, HTTP status for an early provider
   * error, `retryMs`, any `protocol`). On the Fastify platform, pass `FastifyRequest`/`FastifyReply`.
   */
  async chat(req: Request, res: Response, body: unknown): Promise<void> {
    await sendSSE(req, res, (signal) => this.#llm(messagesFrom(body), signal), {
      timeout: { firstTokenMs: 30_000, idleMs: 30_000 },
      logger: console,
    });
  }
}

// What tsc emits for `@Controller()`, `@Inject(LLM)` and the route decorators (`__decorate`, `__param`).
Reflect.decorate([Controller()], ChatController);
Inject(LLM)(ChatController, undefined, 0);
route(ChatController, 'stream', Sse('chat/stream'), [Query('q')]);
route(ChatController, 'chat', Post('chat'), [Req(), Res(), Body()]);

export class ChatModule {
  /** The chat routes, answering with `llm`. */
  static forRoot(llm: Llm): DynamicModule {
    return { module: ChatModule, controllers: [ChatController], providers: [{ provide: LLM, useValue: llm }] };
  }
}
Reflect.decorate([Module({})], ChatModule);

function route(target: { prototype: object }, name: string, method: MethodDecorator, params: ParameterDecorator[]): void {
  Reflect.decorate([method], target.prototype, name, Object.getOwnPropertyDescriptor(target.prototype, name));
  params.forEach((param, index) => param(target.prototype, name, index));
}

async function main(): Promise<void> {
  const { llm, name, close } = await createLlm();
  const app = await NestFactory.create(ChatModule.forRoot(llm));
  const port = Number(process.env.PORT ?? 3006);
  await app.listen(port);
  console.log(`tokenrelay nestjs example on http://localhost:${port}, answering with ${name}`);
  console.log(`try: curl -N 'localhost:${port}/chat/stream?q=hi'`);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, async () => {
      // Each open stream gets a `shutdown` event (with `retry`), and its provider request is aborted.
      await closeAllStreams({ server: app.getHttpServer(), retryMs: 2000, reason: 'The server is restarting' });
      await app.close();
      await close();
      process.exit(0);
    });
  }
}

if (import.meta.main) await main();
