import { hostname, userInfo } from 'node:os';
import type { Command } from 'commander';
import { readEnvironment } from '../config/load.js';
import { Secret } from '../config/secret.js';
import { createLogger } from '../logging.js';
import { isUpstreamKeyError, type UpstreamKeyError } from '../secrets/errors.js';
import { hasKeyShape, keyFingerprint } from '../secrets/key-shape.js';
import {
  createUpstreamKeyProvider,
  type RotationResult,
  type UpstreamKeyStatus,
} from '../secrets/provider.js';
import { createKeySource } from '../secrets/sources.js';
import { verifyKey } from '../secrets/verify.js';
import { recordUpstreamRotation } from './admin-audit.js';
import { type CliContext, cliContext } from './context.js';
import { exitCodes, out, outJson, UsageError } from './output.js';

type Config = CliContext['config'];

/** The variable holding a candidate key for `verify` and `rotate`. */
const NEW_KEY_VARIABLE = 'MISTRAL_API_KEY_NEW';

interface CandidateFlags {
  stdin?: boolean;
  json?: boolean;
}

interface VerifyFlags extends CandidateFlags {
  /** Check the key the environment's source holds, even when a candidate is given. */
  source?: boolean;
}

/** Prints a key lifecycle failure as one line with its code, and sets the failure exit code. */
function fail(error: UpstreamKeyError, hint?: string): void {
  process.stderr.write(`error: ${error.message} (${error.code})\n`);
  if (hint) process.stderr.write(`${hint}\n`);
  process.exitCode = exitCodes.failure;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').trim();
}

/** A key given on stdin or in MISTRAL_API_KEY_NEW, or null when neither is given. */
async function givenKey(flags: CandidateFlags): Promise<Secret | null> {
  if (flags.stdin) {
    const value = await readStdin();
    if (!value) throw new UsageError('--stdin: nothing was read from standard input');
    return new Secret(value, 'stdin');
  }
  const value = (await readEnvironment(process.cwd()))[NEW_KEY_VARIABLE]?.trim();
  return value ? new Secret(value, NEW_KEY_VARIABLE) : null;
}

/** The key an environment's configured source holds now; null after printing why not. */
async function keyFromSource(config: Config): Promise<Secret | null> {
  const environment = config.environment;
  const deps = {
    readEnv: () => readEnvironment(process.cwd()),
    timeoutMs: config.upstreamKey.timeoutMs,
  };
  const source = createKeySource(environment, config.upstreamKey.sources[environment], deps);
  try {
    return (await source.load()).key;
  } catch (error) {
    if (!isUpstreamKeyError(error)) throw error;
    fail(error, `give a candidate in ${NEW_KEY_VARIABLE} or on stdin with --stdin`);
    return null;
  }
}

async function verify(flags: VerifyFlags, command: Command): Promise<void> {
  // `--env` is a program-wide flag: it sets `config.environment`.
  const { config } = await cliContext(command);
  const key = flags.source
    ? await keyFromSource(config)
    : ((await givenKey(flags)) ?? (await keyFromSource(config)));
  if (!key) return;

  const fingerprint = keyFingerprint(key);
  process.stderr.write(`checking the key from ${key.source} (fingerprint ${fingerprint})\n`);
  const malformed = !hasKeyShape(key) && config.upstreamKey.shapeCheck === 'refuse';
  const checked = malformed
    ? { result: 'invalid' as const, reason: 'not 32 letters and digits' }
    : await verifyKey(config.upstream.baseUrl, key, { timeoutMs: config.upstreamKey.timeoutMs });
  process.exitCode = checked.result === 'valid' ? exitCodes.ok : exitCodes.failure;
  if (flags.json) return outJson({ ...checked, candidate: key.source, fingerprint });
  const detail = 'reason' in checked ? checked.reason : checked.status;
  out(
    checked.result === 'valid' || detail === undefined
      ? checked.result
      : `${checked.result} (${detail})`,
  );
}

/** Who rotated, for the audit trail: the operating-system user and host. */
function cliActor(): string {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // Some containers run as a user without a name.
  }
  return `cli:${user}@${hostname()}`;
}

async function openProvider(config: Config, environment: string, verifyLoaded: boolean) {
  const environments = [...new Set([...config.environments, environment])];
  return createUpstreamKeyProvider({
    config,
    environments,
    logger: createLogger({ level: 'silent' }),
    timer: false,
    verifyLoaded,
  });
}

function printRotation(result: RotationResult): void {
  out(`rotated ${result.environment}: ${result.location}`);
  if (result.version) out(`  version      ${result.version}`);
  const was = result.previousFingerprint ? ` (was ${result.previousFingerprint})` : '';
  out(`  fingerprint  ${result.fingerprint}${was}`);
  const { verified } = result;
  out(`  verified     ${verified ? `${verified.result} (${verified.status})` : 'not checked'}`);
  out(`  by           ${result.actor} at ${result.at}`);
}

/** When the other processes serving the environment will use the new key. */
function printPropagation(config: Config): void {
  const every = config.upstreamKey.refreshSeconds;
  const when = every > 0 ? `at their next refresh (every ${every} s)` : 'on their next refresh';
  process.stderr.write(
    `Running gateways switch ${when}, or at once on SIGHUP. Revoke the old key upstream only ` +
      'once every replica has switched.\n',
  );
}

interface RotateFlags extends CandidateFlags {
  verify?: boolean;
}

async function rotate(flags: RotateFlags, command: Command): Promise<void> {
  const { config } = await cliContext(command);
  const environment = config.environment;
  const key = await givenKey(flags);
  if (!key)
    throw new UsageError(`give the new key in ${NEW_KEY_VARIABLE} or on stdin with --stdin`);

  const provider = await openProvider(config, environment, false);
  let result: RotationResult;
  try {
    result = await provider.rotate(environment, key, {
      actor: cliActor(),
      verify: flags.verify !== false,
      requireWrite: true,
    });
  } catch (error) {
    if (!isUpstreamKeyError(error)) throw error;
    const hint =
      error.code === 'source_read_only'
        ? 'Set the new key where the gateway reads it and restart each replica, or rotate ' +
          "through the gateway's admin endpoint (that process only)."
        : undefined;
    return fail(error, hint);
  }
  await recordUpstreamRotation(config, result);
  if (flags.json) outJson(result);
  else printRotation(result);
  printPropagation(config);
}

function statusLine(environment: string, s: UpstreamKeyStatus): string {
  const checked = s.verified
    ? `${s.verified.result}${s.verified.status ? ` (${s.verified.status})` : ''}`
    : 'not checked';
  return [environment, s.source, s.fingerprint ?? '-', checked, s.location].join('  ');
}

async function status(flags: { json?: boolean; verify?: boolean }, command: Command) {
  const { config } = await cliContext(command);
  const provider = await openProvider(config, config.environment, flags.verify === true);
  const all = provider.status();
  const notOk = Object.values(all).some((s) => !s.ok);
  process.exitCode = notOk ? exitCodes.failure : exitCodes.ok;
  if (flags.json) return outJson(all);
  for (const [environment, s] of Object.entries(all)) {
    out(statusLine(environment, s));
    for (const warning of s.warnings) process.stderr.write(`warning: ${warning}\n`);
  }
}

/**
 * Adds `upstream verify|rotate|status`: check a candidate upstream key with Mistral, switch an
 * environment to a new key through its source, and show where each key comes from. No command
 * prints a key; a short fingerprint names it.
 */
export function registerUpstreamCommands(program: Command): void {
  const upstream = program
    .command('upstream')
    .description('verify, rotate and inspect the real Mistral keys the gateway uses');
  upstream
    .command('verify')
    .description(
      `check a key with Mistral (GET /v1/models): from --stdin, ${NEW_KEY_VARIABLE}, or the ` +
        "environment's configured source; exit 0 only when valid",
    )
    .option('--stdin', 'read the candidate key from standard input')
    .option(
      '--source',
      `check the key the environment's source holds, even with ${NEW_KEY_VARIABLE}`,
    )
    .option('--env <name>', 'environment whose source to check (default: the configured one)')
    .option('--json', 'print JSON')
    .action(verify);
  upstream
    .command('rotate')
    .description(
      `verify a new key (from --stdin or ${NEW_KEY_VARIABLE}) and write it to the ` +
        "environment's source, where running gateways pick it up",
    )
    .option('--stdin', 'read the new key from standard input')
    .option('--env <name>', 'environment to rotate (default: the configured one)')
    .option('--no-verify', 'skip the check with Mistral')
    .option('--json', 'print the rotation record as JSON')
    .action(rotate);
  upstream
    .command('status')
    .description('show where each served environment gets its key, with its fingerprint')
    .option('--verify', 'also check each key with Mistral')
    .option('--json', 'print JSON')
    .action(status);
}
