import type { Command } from 'commander';
import { GuardError } from '../errors.js';
import { DEFAULT_GRACE_MS, rotateVirtualKey } from '../keys/rotate.js';
import type { KeyPatch, KeyStore, VirtualKeyRecord } from '../keys/types.js';
import { openKeyStore } from '../store/open.js';
import { recordKeyAdmin } from './admin-audit.js';
import { type CliContext, cliContext } from './context.js';
import { parseGuard } from './guard-flags.js';
import {
  LIMIT_FLAGS,
  type LimitFlagValues,
  PROFILE_DEFAULT,
  parseEnvironment,
  parseExpires,
  parseGrace,
  parseKeyId,
  parseLimits,
  parseMaxTokens,
  parseModels,
  parseName,
} from './keys-flags.js';
import { usage } from './keys-usage.js';
import { narrowingNotes, printable, printDetails, printTable, view } from './keys-view.js';
import { out, outJson, UsageError } from './output.js';

type Config = CliContext['config'];

async function withStore<T>(
  command: Command,
  run: (store: KeyStore, config: Config) => Promise<T>,
): Promise<T> {
  const { config } = await cliContext(command);
  const store = await openKeyStore(config);
  try {
    return await run(store, config);
  } finally {
    await store.close();
  }
}

async function getOrFail(store: KeyStore, id: string): Promise<VirtualKeyRecord> {
  const record = await store.get(id);
  // Ids are public, so naming the id in the message is safe.
  if (!record) throw new GuardError('not_found', { message: `no virtual key with id ${id}` });
  return record;
}

function printNotes(record: VirtualKeyRecord, config: Config): void {
  for (const note of narrowingNotes(record, config)) process.stderr.write(`${note}\n`);
}

interface CreateFlags extends LimitFlagValues {
  name: string;
  env?: string;
  models?: string;
  maxTokens?: string;
  guard?: string;
  expires?: string;
  json?: boolean;
}

async function create(flags: CreateFlags, command: Command): Promise<void> {
  const now = new Date();
  const name = parseName(flags.name);
  const models = parseModels(flags.models);
  const maxTokens = parseMaxTokens(flags.maxTokens);
  const guard = parseGuard(flags.guard);
  const limits = parseLimits(flags);
  const expiresAt = parseExpires(flags.expires, now);
  await withStore(command, async (store, config) => {
    const environment = parseEnvironment(flags.env, config);
    const { record, key } = await store.create({
      name,
      environment,
      models,
      maxTokens,
      limits,
      guard,
      expiresAt,
      now,
    });
    await recordKeyAdmin(config, 'create', record);
    const v = view(record, now, config);

    printNotes(record, config);
    if (flags.json) {
      const { id, name: label, ...rest } = v;
      outJson({ id, name: label, key, ...rest });
      return;
    }
    printDetails(v);
    out('');
    out(key);
    out('');
    process.stderr.write(
      'This key is shown only this once: store it now. It cannot be recovered, only revoked.\n',
    );
  });
}

interface UpdateFlags extends LimitFlagValues {
  name?: string;
  models?: string;
  maxTokens?: string;
  guard?: string;
  json?: boolean;
}

/** The patch the update flags ask for; only the flags given appear in it. */
function patchOf(flags: UpdateFlags): KeyPatch {
  const patch: KeyPatch = {};
  if (flags.name !== undefined) patch.name = parseName(flags.name);
  if (flags.models !== undefined) patch.models = parseModels(flags.models, true);
  if (flags.maxTokens !== undefined) patch.maxTokens = parseMaxTokens(flags.maxTokens, true);
  if (flags.guard !== undefined) patch.guard = parseGuard(flags.guard, true);
  const limits = parseLimits(flags, true);
  if (Object.keys(limits).length > 0) patch.limits = limits;
  if (Object.keys(patch).length === 0) {
    const names = ['--name', '--models', '--max-tokens', ...LIMIT_FLAGS.map(([, flag]) => flag)];
    throw new UsageError(`nothing to change: give at least one of ${names.join(', ')}`);
  }
  return patch;
}

async function update(id: string, flags: UpdateFlags, command: Command): Promise<void> {
  const keyId = parseKeyId(id);
  const patch = patchOf(flags);
  const now = new Date();
  await withStore(command, async (store, config) => {
    const before = await getOrFail(store, keyId);
    const after = (await store.update(keyId, patch)) ?? before;
    await recordKeyAdmin(config, 'update', after);
    const v = view(after, now, config);

    printNotes(after, config);
    if (flags.json) return outJson(v);
    printDetails(v);
    process.stderr.write('Updated; running gateways apply it from their next request.\n');
  });
}

async function list(flags: { all?: boolean; json?: boolean }, command: Command): Promise<void> {
  const now = new Date();
  await withStore(command, async (store, config) => {
    const records = await store.list({ includeRevoked: flags.all === true });
    const views = records.map((r) => view(r, now, config));
    if (flags.json) return outJson(views);
    if (views.length > 0) return printTable(views);
    out(flags.all ? 'No keys.' : 'No keys (revoked keys are shown with --all).');
  });
}

async function show(id: string, flags: { json?: boolean }, command: Command): Promise<void> {
  const keyId = parseKeyId(id);
  await withStore(command, async (store, config) => {
    const v = view(await getOrFail(store, keyId), new Date(), config);
    if (flags.json) return outJson(v);
    printDetails(v);
  });
}

async function revoke(id: string, flags: { json?: boolean }, command: Command): Promise<void> {
  const keyId = parseKeyId(id);
  const now = new Date();
  await withStore(command, async (store, config) => {
    const before = await getOrFail(store, keyId);
    const after = (await store.revoke(keyId, now)) ?? before;
    const alreadyRevoked = before.revokedAt !== null;
    if (!alreadyRevoked) await recordKeyAdmin(config, 'revoke', after);
    if (flags.json) return outJson({ ...view(after, now, config), alreadyRevoked });
    out(
      alreadyRevoked
        ? `${keyId} was already revoked at ${after.revokedAt}.`
        : `Revoked ${keyId} (${printable(after.name)}); gateways refuse it from now on.`,
    );
  });
}

async function rotate(
  id: string,
  flags: { grace?: string; json?: boolean },
  command: Command,
): Promise<void> {
  const keyId = parseKeyId(id);
  const graceMs = parseGrace(flags.grace, DEFAULT_GRACE_MS);
  const now = new Date();
  await withStore(command, async (store, config) => {
    const { previous, record, key } = await rotateVirtualKey(store, keyId, { graceMs, now });
    await recordKeyAdmin(config, 'rotate', previous);
    const v = view(record, now, config);
    const old = view(previous, now, config);

    if (flags.json) {
      const { id: newId, name: label, ...rest } = v;
      outJson({ id: newId, name: label, key, ...rest, previous: old });
      return;
    }
    printDetails(v);
    out('');
    out(key);
    out('');
    process.stderr.write(
      'This key is shown only this once: store it now. It cannot be recovered, only revoked.\n',
    );
    process.stderr.write(
      old.status === 'active'
        ? `${keyId} keeps working until ${previous.graceUntil}, then is refused as rotated.\n`
        : `${keyId} is refused from now on, as rotated.\n`,
    );
  });
}

function limitOptions(command: Command, clearable: boolean): Command {
  const clear = clearable ? `; "${PROFILE_DEFAULT}" clears it` : '';
  for (const [, flag, what] of LIMIT_FLAGS) {
    command.option(`${flag} <n>`, `${what}, below the profile's${clear}`);
  }
  return command;
}

/**
 * Adds `keys create|update|list|show|revoke|rotate|usage` to the program. Keys are printed once,
 * by `create` and `rotate`; hashes never.
 */
export function registerKeysCommands(program: Command): void {
  const keys = program
    .command('keys')
    .description('create, update, list, show, revoke and rotate virtual keys, and show usage');
  const createCommand = keys
    .command('create')
    .description('create a virtual key and print it, this once')
    .requiredOption('--name <name>', 'a label for people, e.g. the application holding the key')
    .option('--env <name>', 'environment of the key (default: the configured environment)')
    .option(
      '--models <list>',
      "comma-separated models the key may use, mistral-* for a prefix (default: the profile's)",
    )
    .option('--max-tokens <n>', "highest max_tokens the key may ask for (default: the profile's)")
    .option('--guard <rules>', 'stricter guard actions, e.g. input.pii=block,output.email=redact')
    .option('--expires <when>', 'a duration (12h, 30d) or a UTC date (2027-01-01)');
  limitOptions(createCommand, false).option('--json', 'print JSON').action(create);
  const updateCommand = keys
    .command('update')
    .description('change the policy of a key; running gateways apply it from their next request')
    .argument('<id>', 'key id (key_...)')
    .option('--name <name>', 'a new label')
    .option('--models <list>', `comma-separated models; "${PROFILE_DEFAULT}" for the profile's`)
    .option('--max-tokens <n>', `highest max_tokens; "${PROFILE_DEFAULT}" for the profile's`)
    .option('--guard <rules>', `stricter guard actions; "${PROFILE_DEFAULT}" for the profile's`);
  limitOptions(updateCommand, true).option('--json', 'print JSON').action(update);
  keys
    .command('list')
    .description('list keys, without revoked ones unless --all')
    .option('--all', 'include revoked keys')
    .option('--json', 'print JSON')
    .action(list);
  keys
    .command('show')
    .description('show one key')
    .argument('<id>', 'key id (key_...)')
    .option('--json', 'print JSON')
    .action(show);
  keys
    .command('revoke')
    .description('revoke a key; running gateways refuse it from their next request')
    .argument('<id>', 'key id (key_...)')
    .option('--json', 'print JSON')
    .action(revoke);
  keys
    .command('rotate')
    .description('replace a key with a new one of the same policy; the old one works for --grace')
    .argument('<id>', 'key id (key_...)')
    .option(
      '--grace <duration>',
      'how long the old key keeps working: 30s, 15m, 24h, 7d or 0',
      '24h',
    )
    .option('--json', 'print JSON')
    .action(rotate);
  keys
    .command('usage')
    .description("show a key's requests, tokens and budgets now, from the shared Redis counters")
    .argument('<id>', 'key id (key_...)')
    .option('--json', 'print JSON')
    .action(usage);
}
