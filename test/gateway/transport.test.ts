import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { connect, createServer, type Socket } from 'node:net';
import { test } from 'node:test';
import type { Config } from '../../src/config/load.js';
import { configSchema } from '../../src/config/schema.js';
import { isGuardError } from '../../src/errors.js';
import { createTransport, rememberPeers } from '../../src/gateway/transport.js';
import { createLogger } from '../../src/logging.js';

// The plain-HTTP and forwarded-header rules, on requests as Node hands them over: a peer
// address and headers. Only the rules are exercised here; the servers are tested end to end.
const logger = createLogger({ level: 'silent' });

function transport(server: Record<string, unknown>) {
  const config = { ...configSchema.parse({ server }), upstreamKeys: {}, configFile: null };
  return createTransport(config as Config, logger);
}

function request(peer: string, headers: Record<string, string> = {}): IncomingMessage {
  return { socket: { remoteAddress: peer }, headers } as unknown as IncomingMessage;
}

const refused = (error: unknown) => isGuardError(error, 'https_required');

test('without TLS, plain HTTP is served to loopback clients only', () => {
  const t = transport({});
  t.checkScheme(request('127.0.0.1'));
  t.checkScheme(request('::1'));
  t.checkScheme(request('::ffff:127.0.0.1'));
  assert.throws(() => t.checkScheme(request('10.1.2.3')), refused);
  assert.throws(
    () => t.checkScheme(request('10.1.2.3', { 'x-forwarded-proto': 'https' })),
    refused,
  );
});

test('a trusted proxy that terminated TLS is believed, an untrusted one is not', () => {
  const t = transport({ trustProxy: ['10.0.0.0/8'] });
  t.checkScheme(request('10.1.2.3', { 'x-forwarded-proto': 'https' }));
  assert.throws(() => t.checkScheme(request('10.1.2.3', { 'x-forwarded-proto': 'http' })), refused);
  assert.throws(
    () => t.checkScheme(request('192.168.1.9', { 'x-forwarded-proto': 'https' })),
    refused,
  );
});

test('allowInsecureHttp serves plain HTTP to anyone', () => {
  transport({ allowInsecureHttp: true }).checkScheme(request('203.0.113.7'));
});

test('the client address comes from X-Forwarded-For only through trusted proxies', () => {
  const t = transport({ trustProxy: ['10.0.0.0/8', '192.168.0.1'] });
  // A client may put anything at the left; the rightmost address no trusted proxy added wins.
  const headers = { 'x-forwarded-for': '1.1.1.1, 198.51.100.4, 192.168.0.1' };
  assert.equal(t.clientIp(request('10.0.0.2', headers)), '198.51.100.4');
  assert.equal(t.clientIp(request('203.0.113.9', headers)), '203.0.113.9');
  assert.equal(t.clientIp(request('10.0.0.2', { 'x-forwarded-for': 'garbage' })), '10.0.0.2');
  assert.equal(transport({}).clientIp(request('10.0.0.2', headers)), '10.0.0.2');
});

test('trustProxy entries must be addresses or CIDRs', () => {
  const result = configSchema.safeParse({ server: { trustProxy: ['10.0.0.0/33', 'proxy.local'] } });
  assert.equal(result.success, false);
  assert.deepEqual(
    result.error!.issues.map((i) => i.path.join('.')),
    ['server.trustProxy.0', 'server.trustProxy.1'],
  );
});

/** A server-side socket whose client has gone, from a server that remembers peers or not. */
async function closedSocket(remember: boolean): Promise<Socket> {
  const server = createServer();
  if (remember) rememberPeers(server);
  const connected = new Promise<Socket>((resolve) => server.once('connection', resolve));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  connect(port, '127.0.0.1').on('error', () => {});
  const socket = await connected;
  socket.destroy();
  await new Promise((resolve) => socket.once('close', resolve));
  await new Promise((resolve) => server.close(resolve));
  return socket;
}

test('a client that left is still judged by the address it connected from', async () => {
  // Node forgets the peer of a closed socket it was never asked about.
  assert.equal((await closedSocket(false)).remoteAddress, undefined);
  const gone = { socket: await closedSocket(true), headers: {} } as unknown as IncomingMessage;
  const t = transport({});
  assert.equal(t.clientIp(gone), '127.0.0.1');
  t.checkScheme(gone);
});
