/**
 * A small chat app with its own `/api/chat` endpoint, guarded by mistral-guard: the Fastify
 * plugin checks what the browser sends before the handler runs, and the guarded client checks
 * again what goes to Mistral and what comes back. In your app, import from 'mistral-guard'.
 */
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import {
  type GuardedMistral,
  guardedRequestOf,
  isGuardError,
  mistralGuardFastify,
  toSdkRequest,
} from '../../src/index.js';

export interface ChatAppOptions {
  /** The guarded client every call goes through. */
  client: GuardedMistral;
  /** The model used when a request names none. */
  model?: string;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Builds the app. `POST /api/chat` takes Mistral's chat body (`messages`, and optionally
 * `model`, `max_tokens`, `temperature`, `stream`), answers `{ reply }`, or streams
 * `data: {"delta": "..."}` events when `stream` is true.
 */
export async function buildChatApp(options: ChatAppOptions): Promise<FastifyInstance> {
  const model = options.model ?? 'mistral-small-latest';
  const app = Fastify({
    logger: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
  });
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });

  await app.register(mistralGuardFastify, {
    client: options.client,
    // A real app takes the user from its session; a header keeps the example short.
    userId: (request) => {
      const user = request.headers['x-user-id'];
      return typeof user === 'string' ? user : null;
    },
    // The browser may leave the model out: the server picks it before the body is checked.
    body: (raw) => (isObject(raw) && raw.model === undefined ? { ...raw, model } : raw),
  });

  app.post('/api/chat', { config: { mistralGuard: 'chat' } }, async (request, reply) => {
    const { body, client } = guardedRequestOf(request, 'chat');
    const sdkRequest = toSdkRequest('chat.complete', body);
    if (!body.stream) {
      const answer = await client!.chat.complete(sdkRequest);
      return { reply: answer.choices[0]?.message?.content ?? '' };
    }
    const stream = await client!.chat.stream(sdkRequest);
    async function* events() {
      try {
        for await (const event of stream) {
          const delta = event.data?.choices[0]?.delta.content;
          if (typeof delta === 'string' && delta) yield `data: ${JSON.stringify({ delta })}\n\n`;
        }
        yield 'data: [DONE]\n\n';
      } catch (error) {
        // The status line is sent: a stream stopped by the guard says so in-band.
        const code = isGuardError(error) ? error.code : 'internal_error';
        yield `data: ${JSON.stringify({ error: code })}\n\n`;
      }
    }
    return reply.type('text/event-stream').send(Readable.from(events()));
  });
  return app;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
