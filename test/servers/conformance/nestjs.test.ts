// NestJS (Express platform): a `@Get()` route with `@Req()`/`@Res()` streaming through
// `sendSSE` of tokenrelay/nestjs. (The `@Sse()` helper is framed by Nest itself: no HTTP status
// for early errors, Nest's own headers; test/servers/nestjs.test.ts covers it.) Decorators are
// applied as tsc compiles them: the repo builds without `experimentalDecorators`.
import 'reflect-metadata';
import { Controller, Get, Module, Req, Res } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { Request, Response } from 'express';
import { closeAllStreams, sendSSE } from 'tokenrelay/nestjs';
import { listen, type AdapterDescriptor, type Route } from './adapter.js';
import { runConformance } from './suite.js';

const descriptor: AdapterDescriptor = {
  name: 'nestjs (express platform) sendSSE()',
  transport: 'sse',
  http2: false,
  writeTimeout: true,
  asyncFactory: true,
  results: true,
  closeAllStreams,
  isNative: (native) => typeof (native as Request).get === 'function' && (native as Request).app !== undefined,
  serve: async (route) => {
    class ChatController {
      async chat(req: Request, res: Response): Promise<void> {
        const { factory, options, onResult }: Route = route();
        const result = await sendSSE(req, res, (signal) => factory(req, signal) as AsyncIterable<never>, options);
        onResult?.(result);
      }
    }
    Reflect.decorate([Controller()], ChatController);
    Reflect.decorate([Get('chat')], ChatController.prototype, 'chat', Object.getOwnPropertyDescriptor(ChatController.prototype, 'chat'));
    Req()(ChatController.prototype, 'chat', 0);
    Res()(ChatController.prototype, 'chat', 1);
    class AppModule {}
    Reflect.decorate([Module({ controllers: [ChatController] })], AppModule);
    const app = await NestFactory.create(AppModule, { logger: false });
    await app.init();
    const served = await listen(app.getHttpServer());
    return {
      ...served,
      close: async () => {
        await served.close();
        await app.close();
      },
    };
  },
};

runConformance(descriptor);
