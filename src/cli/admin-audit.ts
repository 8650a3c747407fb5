import { randomUUID } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import type { Config } from '../config/load.js';
import type { VirtualKeyRecord } from '../keys/types.js';
import { openAuditSinks } from '../store/open.js';
import { exitCodes } from './output.js';

/** What an operator did to a key; the audit action is `admin.key.<verb>`. */
export type KeyAdminVerb = 'create' | 'update' | 'revoke' | 'rotate';

/** Who ran the command, as far as the machine knows: `user@host`. Never a secret. */
function operator(): string {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // No entry for this uid (a container): the host still says where it came from.
  }
  return `${user}@${hostname()}`;
}

/**
 * Records an admin action on a key in the audit trail, with the same sinks the gateway uses:
 * action `admin.key.<verb>`, method `CLI`, the key's id, name and environment, and the operator
 * as user agent. The key itself and its hash are never part of it. The change is already made
 * when this runs, so a failure to record is reported on stderr and ends the command with exit
 * code 1 rather than hidden.
 *
 * @example
 * await recordKeyAdmin(config, 'revoke', record);
 */
export async function recordKeyAdmin(
  config: Config,
  verb: KeyAdminVerb,
  record: VirtualKeyRecord,
): Promise<void> {
  try {
    const audit = await openAuditSinks(config);
    if (!audit) return;
    try {
      await audit.record({
        requestId: `cli-${randomUUID()}`,
        action: `admin.key.${verb}`,
        method: 'CLI',
        path: `keys ${verb}`,
        keyId: record.id,
        keyName: record.name,
        environment: record.environment,
        success: true,
        status: 200,
        userAgent: `mistral-guard-cli (${operator()})`,
      });
    } finally {
      await audit.close();
    }
  } catch (error) {
    const code = (error as { code?: unknown })?.code;
    const suffix = typeof code === 'string' ? ` (${code})` : '';
    process.stderr.write(
      `warning: the key was changed, but the audit event could not be recorded${suffix}\n`,
    );
    process.exitCode = exitCodes.failure;
  }
}

/**
 * Records an upstream key rotation made from the command line: `admin.upstream.rotate`, with the
 * environment and, as the key's name, the fingerprints before and after (short salted hashes that
 * name a key without revealing it).
 */
export async function recordUpstreamRotation(
  config: Config,
  result: { environment: string; fingerprint: string; previousFingerprint: string | null },
): Promise<void> {
  try {
    const audit = await openAuditSinks(config);
    if (!audit) return;
    try {
      await audit.record({
        requestId: `cli-${randomUUID()}`,
        action: 'admin.upstream.rotate',
        method: 'CLI',
        path: 'upstream rotate',
        keyName: `fingerprint ${result.previousFingerprint ?? 'none'} -> ${result.fingerprint}`,
        environment: result.environment,
        success: true,
        status: 200,
        userAgent: `mistral-guard-cli (${operator()})`,
      });
    } finally {
      await audit.close();
    }
  } catch (error) {
    const code = (error as { code?: unknown })?.code;
    const suffix = typeof code === 'string' ? ` (${code})` : '';
    process.stderr.write(
      `warning: the key was rotated, but the audit event could not be recorded${suffix}\n`,
    );
    process.exitCode = exitCodes.failure;
  }
}
