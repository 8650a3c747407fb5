import { ConfigError } from '../config/errors.js';
import type { Config } from '../config/load.js';
import { Secret } from '../config/secret.js';
import { GuardError } from '../errors.js';
import { createAuthenticator } from '../keys/authenticator.js';
import { createLogger, type Logger } from '../logging.js';
import { createUpstreamKeyProvider, refreshOnSignal } from '../secrets/provider.js';
import { openStores } from '../store/open.js';
import { createGateway, type Gateway } from './server.js';

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
  if (adminToken !== undefined && (adminToken.length < 32 || new Set(adminToken).size < 12)) {
    throw new ConfigError([
      {
        path: 'MISTRAL_GUARD_ADMIN_TOKEN',
        message:
          'is too weak: at least 32 characters, not a repeated pattern (e.g. openssl rand -base64 32)',
      },
    ]);
  }
  const logger = options.logger ?? createLogger({ level: config.log.level });
  const stores = await openStores(config, { logger });
  const store = stores.keys;
  const auth = createAuthenticator({ store, changes: store.changes() });
  const keys = await createUpstreamKeyProvider({ config, logger });
  const stopSignal = refreshOnSignal(keys);
  const audit = stores.audit;
  const gateway = await createGateway({
    upstreamKeys: keys,
    config,
    logger,
    audit,
    auditHealthy: audit ? () => audit.healthy() : undefined,
    authenticator: {
      authenticate: (header) => auth.authenticate(header),
      ping: () => stores.ping(),
    },
    ...(adminToken
      ? {
          admin: {
            token: adminToken,
            allowFrom: config.admin.allowFrom,
            keys: store,
            reload: async () => ({ object: 'list', data: await keys.refresh() }),
            rotate: async (environment: string, key: string) => {
              try {
                const result = await keys.rotate(environment, new Secret(key, 'admin API'), {
                  actor: 'admin-api',
                });
                return { ...result };
              } catch (error) {
                throw rotationError(error);
              }
            },
          },
        }
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
      stopSignal();
      keys.close();
      await stores.close();
      logger.flush();
    },
  };
}

/**
 * What a refused rotation tells the admin caller: a bad key is the caller's mistake (400), a
 * source that cannot be read or written, or a key the upstream does not accept, is 503. The
 * message names the problem, never the key.
 */
function rotationError(error: unknown): GuardError {
  const code = (error as { code?: string })?.code ?? '';
  const message = error instanceof Error ? error.message : 'The rotation failed.';
  if (code.startsWith('key_') && code !== 'key_unverified') {
    return new GuardError('invalid_request', { message, param: 'key' });
  }
  return new GuardError('upstream_unavailable', { message, cause: error });
}
