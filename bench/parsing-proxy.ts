// A second baseline: the least an inspecting proxy must do. Like the pass-through proxy it
// forwards every request on undici with no checks, but it reads the request and the answer
// whole and parses and re-serialises both as JSON, as any gateway that looks at the content
// must. The distance from the pass-through proxy to this one is the price of reading content at
// all; the distance from this one to the gateway is the price of its checks.
import type { IncomingMessage } from 'node:http';
import { runBaselineProxy } from './baseline-proxy.js';

function readAll(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.once('error', reject);
  });
}

runBaselineProxy('parsing-proxy', async (pool, req, res) => {
  const body = JSON.parse(await readAll(req)) as unknown;
  const answer = await pool.request({
    method: 'POST',
    path: req.url ?? '/',
    headers: {
      'content-type': 'application/json',
      authorization: req.headers.authorization ?? '',
    },
    body: JSON.stringify(body),
  });
  const json = (await answer.body.json()) as unknown;
  res.writeHead(answer.statusCode, { 'content-type': 'application/json' });
  res.end(JSON.stringify(json));
});
