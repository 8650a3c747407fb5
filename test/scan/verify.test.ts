import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { cli, fakeMistralKey, findingsOf, tempRepo } from './helpers.js';

interface FakeApi {
  url: string;
  /** Bearer keys received, in order. */
  seen: string[];
  maxInFlight: number;
  /** When each request arrived, `performance.now()` milliseconds. */
  arrivals: number[];
  close(): Promise<void>;
}

// A Mistral-compatible `GET /v1/models` on loopback: 200 for live keys, 401 for revoked ones,
// no answer at all for slow ones (the client's timeout must end the wait).
async function fakeApi(keys: {
  live: string[];
  revoked: string[];
  slow: string[];
}): Promise<FakeApi> {
  const seen: string[] = [];
  const hanging: ServerResponse[] = [];
  let inFlight = 0;
  const api = { seen, maxInFlight: 0, arrivals: [] as number[] } as FakeApi;
  const server = createServer((req, res) => {
    const key = (req.headers.authorization ?? '').replace(/^Bearer /, '');
    seen.push(key);
    api.arrivals.push(performance.now());
    inFlight++;
    api.maxInFlight = Math.max(api.maxInFlight, inFlight);
    res.once('close', () => inFlight--);
    if (req.method !== 'GET' || req.url !== '/v1/models') res.writeHead(404).end();
    else if (keys.live.includes(key)) res.writeHead(200).end('{"object":"list","data":[]}');
    else if (keys.revoked.includes(key)) res.writeHead(401).end('{"message":"Unauthorized"}');
    else if (keys.slow.includes(key)) hanging.push(res);
    else res.writeHead(500).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  api.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  api.close = async () => {
    for (const res of hanging) res.destroy();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  };
  return api;
}

test('--verify marks each Mistral key live, revoked or unknown, one request per key', async (t) => {
  const repo = tempRepo(t);
  const [live, revoked, slow, broken] = [
    fakeMistralKey(),
    fakeMistralKey(),
    fakeMistralKey(),
    fakeMistralKey(),
  ];
  const api = await fakeApi({ live: [live], revoked: [revoked], slow: [slow] });
  t.after(() => api.close());
  repo.write('a.env', `MISTRAL_API_KEY=${live}\n`);
  repo.write('b.env', `MISTRAL_API_KEY=${revoked}\n`);
  repo.write('c.env', `MISTRAL_API_KEY=${slow}\n`);
  repo.write('d.env', `MISTRAL_API_KEY=${broken}\n`);
  repo.write('e.env', `# the live key again\nMISTRAL_API_KEY=${live}\n`);
  const outputs: string[] = [];
  const run = await cli(
    ['scan', '--verify', '--base-url', api.url, '--verify-timeout', '300', '--format', 'json'],
    { cwd: repo.dir, outputs },
  );
  assert.equal(run.code, 1, run.stderr);
  assert.deepEqual(
    findingsOf(run).map((f) => `${f.file} ${f.verification}`),
    ['a.env live', 'b.env revoked', 'c.env unknown', 'd.env unknown', 'e.env live'],
  );
  assert.equal(api.seen.length, 4);
  assert.deepEqual(new Set(api.seen), new Set([live, revoked, slow, broken]));
  for (const key of [live, revoked, slow, broken]) {
    assert.ok(!outputs.some((o) => o.includes(key)), 'a key was printed');
  }
  assert.match(run.stderr, /Checked 4 Mistral key\(s\) against http:\/\/127\.0\.0\.1:/);
});

test('--verify takes the base URL from MISTRAL_BASE_URL and sends at most four requests at once', async (t) => {
  const repo = tempRepo(t);
  const slow = Array.from({ length: 6 }, fakeMistralKey);
  const api = await fakeApi({ live: [], revoked: [], slow });
  t.after(() => api.close());
  slow.forEach((key, i) => {
    repo.write(`k${i}.env`, `MISTRAL_API_KEY=${key}\n`);
  });
  const run = await cli(['scan', '--verify', '--verify-timeout', '400', '--format', 'json'], {
    cwd: repo.dir,
    env: { MISTRAL_BASE_URL: api.url },
  });
  assert.equal(api.seen.length, 6);
  // Four start at once; the fifth only when one of them gives up (its 400 ms timeout). Counting
  // open requests at the server would race with the server noticing an abandoned one.
  const [first, , , fourth, fifth] = api.arrivals as [number, number, number, number, number];
  assert.ok(fourth - first < 200, 'the first four did not start together');
  assert.ok(fifth - first >= 300, `a fifth request started after ${fifth - first} ms`);
  assert.ok(findingsOf(run).every((f) => f.verification === 'unknown'));
});

test('--verify refuses plain http to a host that is not loopback', async (t) => {
  const repo = tempRepo(t);
  repo.write('a.env', `MISTRAL_API_KEY=${fakeMistralKey()}\n`);
  const run = await cli(['scan', '--verify', '--base-url', 'http://api.example.invalid'], {
    cwd: repo.dir,
  });
  assert.equal(run.code, 2);
  assert.match(run.stderr, /^error: the verify base URL must use https:\/\//);
});
