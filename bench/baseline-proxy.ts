// What the baseline proxies of the benchmarks share: the upstream taken from `--upstream URL`,
// one undici pool to it, a loopback listener on a free port announced as a JSON line (as the
// harness expects of every server it starts), and a clean exit on SIGTERM or SIGINT.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Pool } from 'undici';

/** Runs `handle` for every request, with a pool to the upstream named on the command line. */
export function runBaselineProxy(
  name: string,
  handle: (pool: Pool, req: IncomingMessage, res: ServerResponse) => Promise<void>,
): void {
  const at = process.argv.indexOf('--upstream');
  const upstream = process.argv[at + 1];
  if (at === -1 || !upstream) {
    process.stderr.write(`usage: ${name} --upstream URL\n`);
    process.exit(2);
  }
  const pool = new Pool(upstream, { connections: 256 });
  const server = createServer(async (req, res) => {
    try {
      await handle(pool, req, res);
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
}
