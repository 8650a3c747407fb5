// The baseline a gateway is measured against: a bare reverse proxy on undici that forwards
// every request to the upstream and streams the answer back, with no checks at all.
import { runBaselineProxy } from './baseline-proxy.js';

runBaselineProxy('passthrough-proxy', async (pool, req, res) => {
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
});
