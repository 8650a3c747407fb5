// Runs the loopback Mistral server as its own process for the demo and the benchmarks, so the
// upstream's CPU time is not charged to the process being measured.
//
//   node --import tsx test/support/mock-mistral-cli.ts --port 0 --valid-key KEY
//
// Prints one JSON line `{"url": "..."}` on stdout once listening; SIGTERM or SIGINT closes it.
// Recording is off: nobody outside the process could read the requests, and a long benchmark
// would otherwise grow without bound.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { type MockMistralOptions, startMockMistral } from './mock-mistral.js';

const USAGE = `usage: mock-mistral-cli [--host 127.0.0.1] [--port 0] [--valid-key KEY]...
  [--model ID]... [--stream-chunk-delay-ms N] [--tls-key FILE --tls-cert FILE]
`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '0' },
      'valid-key': { type: 'string', multiple: true },
      model: { type: 'string', multiple: true },
      'stream-chunk-delay-ms': { type: 'string' },
      'tls-key': { type: 'string' },
      'tls-cert': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }

  const port = Number(values.port);
  const delay = Number(values['stream-chunk-delay-ms'] ?? 0);
  if (!Number.isInteger(port) || port < 0 || port > 65535 || !(delay >= 0)) {
    throw new Error(`bad --port or --stream-chunk-delay-ms\n${USAGE}`);
  }
  if (Boolean(values['tls-key']) !== Boolean(values['tls-cert'])) {
    throw new Error(`--tls-key and --tls-cert go together\n${USAGE}`);
  }
  const options: MockMistralOptions = {
    host: values.host,
    port,
    validKeys: values['valid-key'],
    models: values.model,
    streamChunkDelayMs: delay,
    record: false,
  };
  if (values['tls-key'] && values['tls-cert']) {
    const [key, cert] = await Promise.all([
      readFile(values['tls-key'], 'utf8'),
      readFile(values['tls-cert'], 'utf8'),
    ]);
    options.tls = { key, cert };
  }

  const mock = await startMockMistral(options);
  process.stdout.write(`${JSON.stringify({ url: mock.url })}\n`);
  // Once the server is closed nothing holds the event loop, so the process exits by itself with
  // code 0; a leaked handle would show up as a process that never exits.
  const stop = (): void => {
    void mock.close();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
