import { once } from 'node:events';
import { createConnection, createServer, type Socket } from 'node:net';
import type { TestContext } from 'node:test';

/**
 * A TCP relay on loopback to a server (PostgreSQL in the tests) that can be cut: while down it
 * drops every connection, open or new, as a network partition or a server restart would. The
 * server behind it is never touched. `url` is `target` with the relay's address.
 */
export async function relay(t: TestContext, target: URL) {
  const sockets = new Set<Socket>();
  let down = false;
  const server = createServer((client) => {
    if (down) return client.destroy();
    const upstream = createConnection(Number(target.port || 5432), target.hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  const { port } = server.address() as { port: number };
  const url = new URL(target.href);
  url.host = `127.0.0.1:${port}`;
  return {
    url: url.href,
    cut() {
      down = true;
      for (const socket of sockets) socket.destroy();
    },
    restore() {
      down = false;
    },
  };
}
