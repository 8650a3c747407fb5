// A second baseline: the least an inspecting proxy must do. Like the pass-through proxy it
// forwards every request on undici with no checks, but it reads the request and the answer
// whole and parses and re-serialises both as JSON, as any gateway that looks at the content
// must. The distance from the pass-through proxy to this one is the price of reading content at
// all; the distance from this one to the gateway is the price of its checks.
import { createServer, type IncomingMessage } from 'node:http';
import { Pool } from 'undici';

const upstreamArg = process.argv.indexOf('--upstream');
const upstream = process.argv[upstreamArg + 1];
if (upstreamArg === -1 || !upstream) {
  process.stderr.write('usage: parsing-proxy --upstream URL\n');
  process.exit(2);
}
const pool = new Pool(upstream, { connections: 256 });

function readAll(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.once('error', reject);
  });
}

const server = createServer(async (req, res) => {
  try {
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
  } catch {
    if (!res.headersSent) res.writeHead(502);
    res.end();
  }
});

server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}` })}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    server.close();
    void pool.close();
    process.exit(0);
  });
}
