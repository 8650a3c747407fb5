// The baseline a gateway is measured against: a bare reverse proxy on undici that forwards
// every request to the upstream and streams the answer back, with no checks at all.
import { createServer } from 'node:http';
import { Pool } from 'undici';

const upstreamArg = process.argv.indexOf('--upstream');
const upstream = process.argv[upstreamArg + 1];
if (upstreamArg === -1 || !upstream) {
  process.stderr.write('usage: passthrough-proxy --upstream URL\n');
  process.exit(2);
}
const pool = new Pool(upstream, { connections: 256 });

const server = createServer(async (req, res) => {
  try {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (typeof v === 'string' && k !== 'host' && k !== 'connection') headers[k] = v;
    }
    const answer = await pool.request({
      method: req.method as 'POST',
      path: req.url ?? '/',
      headers,
      body: req.method === 'GET' ? null : req,
    });
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(answer.headers)) {
      if (typeof v === 'string' && k !== 'connection' && k !== 'keep-alive') out[k] = v;
    }
    res.writeHead(answer.statusCode, out);
    for await (const chunk of answer.body) res.write(chunk);
    res.end();
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
