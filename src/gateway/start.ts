import { openAuditLog } from '../audit/sqlite-sink.js';
import { ConfigError } from '../config/errors.js';
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
  options: { logger?: Logger; adminToken?: string | undefined } = {},
): Promise<RunningGateway> {
  const adminToken = options.adminToken ?? process.env.MISTRAL_GUARD_ADMIN_TOKEN;
  if (adminToken !== undefined && adminToken.length < 32) {
    throw new ConfigError([
      {
        path: 'MISTRAL_GUARD_ADMIN_TOKEN',
        message: 'is too short: at least 32 characters (e.g. openssl rand -base64 32)',
      },
    ]);
  }
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
    ...(adminToken
      ? { admin: { token: adminToken, allowFrom: config.admin.allowFrom, keys: store } }
      : {}),
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
