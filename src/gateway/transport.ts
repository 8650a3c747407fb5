import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { BlockList, isIP, type Socket } from 'node:net';
import type { SecureContextOptions } from 'node:tls';
import type { Config } from '../config/load.js';
import { isLoopbackHost } from '../config/schema.js';
import { GuardError } from '../errors.js';
import type { Logger } from '../logging.js';

/** Headers on every answer: nothing an answer holds is for a browser to render or cache. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'cache-control': 'no-store',
});

/** How the gateway meets its clients: TLS or not, whom to believe about the original request. */
export interface Transport {
  /** Options for an HTTPS server, or null for plain HTTP. */
  readonly https: (SecureContextOptions & { minVersion: 'TLSv1.2' }) | null;
  /** The client's address: the socket's, or the forwarded one when a trusted proxy sent it. */
  clientIp(req: IncomingMessage): string;
  /**
   * Refuses a plain-HTTP request that is not allowed: without TLS, only loopback clients, a
   * trusted proxy saying the original request was HTTPS, or `allowInsecureHttp` pass.
   */
  checkScheme(req: IncomingMessage): void;
  /** Reloads the certificate when its files change; returns the function that stops watching. */
  watch(apply: (options: SecureContextOptions) => void): () => void;
}

/** A socket with the peer address it had when it connected. */
type RememberingSocket = Socket & { peerAtConnect?: string | undefined };

/**
 * Notes each connection's peer address as it connects: Node forgets it once the socket is gone,
 * and a request from a client that has already left is still judged (and audited) by who sent it.
 */
export function rememberPeers(server: { on(event: string, listener: (s: Socket) => void): void }) {
  const remember = (socket: Socket) => {
    (socket as RememberingSocket).peerAtConnect = socket.remoteAddress;
  };
  server.on('connection', remember);
  server.on('secureConnection', remember);
}

/** The peer address of a socket, also after it closed (see `rememberPeers`). */
function peerAddress(socket: Socket): string | undefined {
  return socket.remoteAddress ?? (socket as RememberingSocket).peerAtConnect;
}

/**
 * A test for membership in a list of addresses and CIDR blocks (`10.0.0.0/8`, `::1`); IPv4
 * addresses written IPv6-mapped (`::ffff:10.1.2.3`) match their IPv4 entries. An empty list
 * matches nothing.
 *
 * @example
 * addressMatcher(['10.0.0.0/8'])('::ffff:10.1.2.3'); // true
 */
export function addressMatcher(
  entries: readonly string[],
): (address: string | undefined) => boolean {
  const list = new BlockList();
  for (const entry of entries) {
    const [address, bits] = entry.split('/') as [string, string | undefined];
    const type = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(bits), type);
  }
  return (address) => {
    if (!address || entries.length === 0) return false;
    const plain = address.startsWith('::ffff:') ? address.slice(7) : address;
    const family = isIP(plain);
    return family !== 0 && list.check(plain, family === 6 ? 'ipv6' : 'ipv4');
  };
}

function readPair(tls: { cert: string; key: string }): { cert: Buffer; key: Buffer } {
  return { cert: readFileSync(tls.cert), key: readFileSync(tls.key) };
}

/**
 * Builds the transport rules of a configuration. Reading the certificate happens here, at start
 * (a missing file stops start-up), never on a request.
 */
export function createTransport(config: Config, logger: Logger): Transport {
  const { tls, trustProxy, allowInsecureHttp } = config.server;
  const isTrusted = addressMatcher(trustProxy);

  return {
    https: tls ? { ...readPair(tls), minVersion: 'TLSv1.2' } : null,
    clientIp(req) {
      const peer = peerAddress(req.socket) ?? 'unknown';
      if (!isTrusted(peer)) return peer;
      const forwarded = req.headers['x-forwarded-for'];
      if (typeof forwarded !== 'string') return peer;
      // The rightmost address no trusted proxy added is the client as the first proxy saw it.
      const hops = forwarded.split(',').map((h) => h.trim());
      for (let i = hops.length - 1; i >= 0; i--) {
        const hop = hops[i]!;
        if (isIP(hop) === 0) return peer;
        if (!isTrusted(hop)) return hop;
      }
      return hops[0] ?? peer;
    },
    checkScheme(req) {
      if (tls || allowInsecureHttp) return;
      const peer = peerAddress(req.socket) ?? '';
      if (isLoopbackHost(peer.startsWith('::ffff:') ? peer.slice(7) : peer)) return;
      if (isTrusted(peer) && req.headers['x-forwarded-proto'] === 'https') return;
      throw new GuardError('https_required');
    },
    watch(apply) {
      if (!tls) return () => {};
      const reload = () => {
        try {
          apply(readPair(tls));
          logger.info('TLS certificate reloaded');
        } catch (error) {
          logger.error({ err: error }, 'TLS certificate reload failed; the previous one stays');
        }
      };
      watchFile(tls.cert, { interval: 2000, persistent: false }, reload);
      watchFile(tls.key, { interval: 2000, persistent: false }, reload);
      return () => {
        unwatchFile(tls.cert, reload);
        unwatchFile(tls.key, reload);
      };
    },
  };
}
