// The main job on real input, with no network and no real key: a loopback Mistral-compatible
// server, the gateway in front of it, a virtual key, and the official SDK pointed at the gateway.
//
//   npm run demo
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Mistral } from '@mistralai/mistralai';
import { canaryUpstreamKey } from '../test/support/canary.js';
import {
  type Child,
  ROOT,
  runCli,
  spawnServer,
  startGatewayProcess,
  TSX,
} from '../test/support/processes.js';

/** The streamed answer of the demo: long enough for the guard to release it as it arrives. */
const STREAMED =
  'A stream sends the answer as it is written, event by event. The gateway relays each event ' +
  'as soon as its content guard has looked at it, so a client sees the text grow while the ' +
  'model is still writing, and the audit event is stored before the final marker goes out.';

const say = (text: string) => process.stdout.write(`${text}\n`);
const step = (text: string) => say(`\n\x1b[1m== ${text}\x1b[0m`);

async function cli(args: string[], dataDir: string, cwd: string) {
  const result = await runCli([...args, '--data-dir', dataDir], { cwd });
  if (result.code !== 0)
    throw new Error(`mistral-guard ${args[0]} ${args[1]} failed: ${result.stderr}`);
  return result.stdout;
}

async function sdkError(run: () => Promise<unknown>): Promise<string> {
  try {
    await run();
    return 'unexpectedly succeeded';
  } catch (error) {
    const e = error as { statusCode?: number; body?: string };
    const body = JSON.parse(e.body ?? '{}') as { code?: string; message?: string };
    return `HTTP ${e.statusCode} ${body.code}: ${body.message}`;
  }
}

async function main(): Promise<void> {
  const cwd = await mkdtemp(join(tmpdir(), 'mistral-guard-demo-'));
  const dataDir = join(cwd, 'data');
  // A made-up upstream key: the loopback server accepts it, nothing else would.
  const upstreamKey = canaryUpstreamKey();
  const children: Child[] = [];
  try {
    step('Starting a Mistral-compatible server on loopback (stands in for api.mistral.ai)');
    const upstream = await spawnServer(
      process.execPath,
      ['--import', TSX, join(ROOT, 'test/support/mock-mistral-cli.ts'), '--valid-key', upstreamKey],
      { cwd },
    );
    children.push(upstream);
    say(`upstream: ${upstream.url}`);

    step('Creating virtual keys (the real key never leaves the gateway)');
    const app = JSON.parse(
      await cli(
        [
          'keys',
          'create',
          '--name',
          'demo-app',
          '--models',
          'mistral-small-latest',
          '--max-tokens',
          '512',
          '--json',
        ],
        dataDir,
        cwd,
      ),
    ) as { id: string; key: string };
    const old = JSON.parse(
      await cli(['keys', 'create', '--name', 'old-service', '--json'], dataDir, cwd),
    ) as {
      id: string;
      key: string;
    };
    say(await cli(['keys', 'list'], dataDir, cwd));

    step('Starting the gateway');
    const gateway = await startGatewayProcess({
      dataDir,
      upstreamUrl: upstream.url,
      cwd,
      env: { MISTRAL_API_KEY: upstreamKey },
    });
    children.push(gateway);
    say(`gateway: ${gateway.url}`);

    const client = new Mistral({ apiKey: app.key, serverURL: gateway.url });

    step('A chat completion through the gateway, with the official SDK');
    const answer = await client.chat.complete({
      model: 'mistral-small-latest',
      messages: [{ role: 'user', content: 'Say hello to the demo.' }],
    });
    say(`assistant: ${answer.choices[0]?.message?.content}`);
    say(`usage: ${JSON.stringify(answer.usage)}`);

    step('A streamed chat completion');
    const stream = await client.chat.stream({
      model: 'mistral-small-latest',
      messages: [
        { role: 'user', content: `Tell me about streams. [[reply:${STREAMED}]] [[chunk:10]]` },
      ],
    });
    // Deltas are printed between bars, empty ones left out. The content guard holds back the
    // last hundred or so characters until it can rule out a secret split across events, so the
    // first events arrive empty and the last one carries that tail.
    process.stdout.write('assistant: |');
    for await (const event of stream) {
      const delta = event.data.choices[0]?.delta?.content;
      if (typeof delta === 'string' && delta !== '') process.stdout.write(`${delta}|`);
    }
    say('');

    step('A model this key may not use');
    say(
      await sdkError(() =>
        client.chat.complete({
          model: 'mistral-large-latest',
          messages: [{ role: 'user', content: 'hi' }],
        }),
      ),
    );

    step('A revoked key');
    await cli(['keys', 'revoke', old.id], dataDir, cwd);
    const revoked = new Mistral({ apiKey: old.key, serverURL: gateway.url });
    say(
      await sdkError(() =>
        revoked.chat.complete({
          model: 'mistral-small-latest',
          messages: [{ role: 'user', content: 'hi' }],
        }),
      ),
    );

    step('The audit trail: one event per request, no key and no prompt in it');
    say(await cli(['audit', 'tail', '-n', '10'], dataDir, cwd));
  } finally {
    for (const child of children.reverse()) await child.stop();
    await rm(cwd, { recursive: true, force: true });
  }
}

main().catch((error) => {
  process.stderr.write(`demo failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
