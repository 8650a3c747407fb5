import { openAuditLog } from '../audit/sqlite-sink.js';
import type { Config } from '../config/load.js';
import { createAuthenticator } from '../keys/authenticator.js';
import { openSqliteKeyStore } from '../keys/sqlite-store.js';
import { createLogger, type Logger } from '../logging.js';
import { createGateway, type Gateway } from './server.js';
import type { AuditRecorder } from './types.js';

/** A gateway started from a configuration, with everything it opened. */
export interface RunningGateway {
  url: string;
  gateway: Gateway;
  logger: Logger;
  /** Stops accepting, lets requests in flight finish, flushes the audit trail, closes stores. */
  close(): Promise<void>;
}

/**
 * Opens the stores named by the configuration, builds the gateway and starts listening.
 * Prints one `listening` log line carrying the URL.
 */
export async function startGateway(
  config: Config,
  options: { logger?: Logger } = {},
): Promise<RunningGateway> {
  const logger = options.logger ?? createLogger({ level: config.log.level });
  const store = openSqliteKeyStore(config.dataDir);
  const auth = createAuthenticator({ store, changes: store.changes() });
  const audit = config.audit.enabled ? await openAuditLog(config.dataDir, { logger }) : null;
  const gateway = await createGateway({
    config,
    logger,
    audit: audit as AuditRecorder | null,
    authenticator: {
      authenticate: (header) => auth.authenticate(header),
      ping: async () => {
        await store.get('key_ping');
      },
    },
  });
  const url = await gateway.listen();
  logger.info({ url, environments: config.environments }, 'listening');
  return {
    url,
    gateway,
    logger,
    async close() {
      // Requests and streams in flight may finish until the deadline; then they are cut.
      const deadline = setTimeout(
        () => gateway.app.server.closeAllConnections(),
        config.server.shutdownTimeoutMs,
      );
      deadline.unref();
      await gateway.close();
      clearTimeout(deadline);
      await audit?.close();
      await store.close();
      logger.flush();
    },
  };
}
