import type { Command } from 'commander';
import { GuardError } from '../errors.js';
import { isWellFormedVirtualKey, VIRTUAL_KEY_PREFIX } from '../keys/format.js';
import { openSqliteKeyStore } from '../keys/sqlite-store.js';
import { type KeyStatus, keyStatus } from '../keys/status.js';
import type { KeyStore, VirtualKeyRecord } from '../keys/types.js';
import { type CliContext, cliContext } from './context.js';
import { out, outJson, UsageError } from './output.js';

type Config = CliContext['config'];

const KEY_ID = /^key_[0-9A-Za-z]{16}$/;
const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/;
const DURATION = /^([1-9][0-9]{0,5})([hd])$/;
const DATE = /^\d{4}-\d{2}-\d{2}$/;
const UTC_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?Z$/;
const HOUR_MS = 3_600_000;
const MAX_EXPIRY_MS = 100 * 365 * 24 * HOUR_MS;
// C0 and C1 controls: a name printed raw could carry terminal escape sequences.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const CONTROLS = new RegExp(CONTROL.source, 'g');

/** What a key looks like to people: every field except the hash, plus its status now. */
interface KeyView {
  id: string;
  name: string;
  environment: string;
  status: KeyStatus;
  models: string[] | null;
  maxTokens: number | null;
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  rotatedAt: string | null;
  replacedBy: string | null;
  graceUntil: string | null;
  limits: VirtualKeyRecord['limits'];
  metadata: Record<string, string>;
}

// Fields are copied one by one, not spread: a field added to the record later (a second hash,
// a key prefix) stays out of CLI output until someone decides it is safe to show.
function view(record: VirtualKeyRecord, now: Date): KeyView {
  return {
    id: record.id,
    name: record.name,
    environment: record.environment,
    status: keyStatus(record, now.getTime()),
    models: record.models,
    maxTokens: record.maxTokens,
    createdAt: record.createdAt,
    expiresAt: record.expiresAt,
    revokedAt: record.revokedAt,
    rotatedAt: record.rotatedAt,
    replacedBy: record.replacedBy,
    graceUntil: record.graceUntil,
    limits: record.limits,
    metadata: record.metadata,
  };
}

function printable(text: string): string {
  return text.replace(CONTROLS, '?');
}

function parseName(value: string): string {
  const name = value.trim();
  if (name.length === 0 || name.length > 100 || CONTROL.test(name)) {
    throw new UsageError('--name must be 1 to 100 characters, without control characters');
  }
  return name;
}

function parseEnvironment(value: string | undefined, config: Config): string {
  const environment = value ?? config.environment;
  const known = Object.keys(config.profiles ?? {});
  if (known.length > 0 && !known.includes(environment)) {
    throw new UsageError(`--env must be one of the configured environments: ${known.join(', ')}`);
  }
  return environment;
}

function parseModels(value: string | undefined): string[] | null {
  if (value === undefined) return null;
  const models = [...new Set(value.split(',').map((m) => m.trim()))].filter((m) => m !== '');
  if (models.length === 0) throw new UsageError('--models must name at least one model');
  if (!models.every((m) => MODEL_NAME.test(m))) {
    throw new UsageError(
      '--models must be model names separated by commas (letters, digits and . _ : / -)',
    );
  }
  return models;
}

function parseMaxTokens(value: string | undefined): number | null {
  if (value === undefined) return null;
  const n = Number(value);
  if (!/^[1-9][0-9]*$/.test(value) || !Number.isSafeInteger(n)) {
    throw new UsageError('--max-tokens must be a positive integer');
  }
  return n;
}

function parseExpires(value: string | undefined, now: Date): string | null {
  if (value === undefined) return null;
  let at = Number.NaN;
  const duration = DURATION.exec(value);
  if (duration) {
    at = now.getTime() + Number(duration[1]) * (duration[2] === 'd' ? 24 : 1) * HOUR_MS;
  } else if (DATE.test(value) || UTC_TIME.test(value)) {
    at = Date.parse(DATE.test(value) ? `${value}T00:00:00Z` : value);
    // Date.parse rolls 2027-02-30 over to March; a date that does not survive the round trip
    // was not a real date.
    if (!Number.isNaN(at) && new Date(at).toISOString().slice(0, 10) !== value.slice(0, 10)) {
      at = Number.NaN;
    }
  }
  if (Number.isNaN(at) || at - now.getTime() > MAX_EXPIRY_MS) {
    throw new UsageError(
      '--expires must be a duration (12h, 30d) or a date within 100 years (2027-01-01, ' +
        '2027-01-01T12:00Z)',
    );
  }
  if (at <= now.getTime()) throw new UsageError('--expires must be in the future');
  return new Date(at).toISOString();
}

function parseKeyId(value: string): string {
  if (KEY_ID.test(value)) return value;
  // Someone pasting the key itself gets told so, and the key is not echoed back.
  if (value.startsWith(VIRTUAL_KEY_PREFIX) || isWellFormedVirtualKey(value)) {
    throw new UsageError('ID must be a key id (key_...), not the key itself; see `keys list`');
  }
  throw new UsageError('ID must be "key_" followed by 16 letters or digits; see `keys list`');
}

async function withStore<T>(
  command: Command,
  run: (store: KeyStore, config: Config) => Promise<T>,
): Promise<T> {
  const { config } = await cliContext(command);
  const store = openSqliteKeyStore(config.dataDir);
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

function printDetails(v: KeyView): void {
  const rows: Array<[string, string]> = [
    ['id', v.id],
    ['name', printable(v.name)],
    ['environment', v.environment],
    ['status', v.status],
    ['models', v.models ? v.models.join(', ') : "the profile's"],
    ['max tokens', v.maxTokens === null ? "the profile's" : String(v.maxTokens)],
    ['created', v.createdAt],
    ['expires', v.expiresAt ?? 'never'],
  ];
  if (v.revokedAt) rows.push(['revoked', v.revokedAt]);
  if (v.replacedBy) rows.push(['replaced by', v.replacedBy], ['grace until', v.graceUntil ?? '-']);
  for (const [label, value] of rows) out(`${`${label}:`.padEnd(13)} ${value}`);
}

function printTable(views: KeyView[]): void {
  const rows = [
    ['ID', 'NAME', 'ENVIRONMENT', 'STATUS', 'CREATED', 'EXPIRES'],
    ...views.map((v) => [
      v.id,
      printable(v.name),
      v.environment,
      v.status,
      v.createdAt.slice(0, 16).replace('T', ' '),
      v.expiresAt ? v.expiresAt.slice(0, 16).replace('T', ' ') : 'never',
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const row of rows)
    out(
      row
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    );
}

interface CreateFlags {
  name: string;
  env?: string;
  models?: string;
  maxTokens?: string;
  expires?: string;
  json?: boolean;
}

async function create(flags: CreateFlags, command: Command): Promise<void> {
  const now = new Date();
  const name = parseName(flags.name);
  const models = parseModels(flags.models);
  const maxTokens = parseMaxTokens(flags.maxTokens);
  const expiresAt = parseExpires(flags.expires, now);
  await withStore(command, async (store, config) => {
    const environment = parseEnvironment(flags.env, config);
    const { record, key } = await store.create({
      name,
      environment,
      models,
      maxTokens,
      expiresAt,
      now,
    });
    const v = view(record, now);

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

async function list(flags: { all?: boolean; json?: boolean }, command: Command): Promise<void> {
  const now = new Date();
  await withStore(command, async (store) => {
    const views = (await store.list({ includeRevoked: flags.all === true })).map((r) =>
      view(r, now),
    );
    if (flags.json) return outJson(views);
    if (views.length > 0) return printTable(views);
    out(flags.all ? 'No keys.' : 'No keys (revoked keys are shown with --all).');
  });
}

async function show(id: string, flags: { json?: boolean }, command: Command): Promise<void> {
  const keyId = parseKeyId(id);
  await withStore(command, async (store) => {
    const v = view(await getOrFail(store, keyId), new Date());
    if (flags.json) return outJson(v);
    printDetails(v);
  });
}

async function revoke(id: string, flags: { json?: boolean }, command: Command): Promise<void> {
  const keyId = parseKeyId(id);
  const now = new Date();
  await withStore(command, async (store) => {
    const before = await getOrFail(store, keyId);
    const after = (await store.revoke(keyId, now)) ?? before;
    const alreadyRevoked = before.revokedAt !== null;
    if (flags.json) return outJson({ ...view(after, now), alreadyRevoked });
    out(
      alreadyRevoked
        ? `${keyId} was already revoked at ${after.revokedAt}.`
        : `Revoked ${keyId} (${printable(after.name)}); gateways refuse it from now on.`,
    );
  });
}

/**
 * Adds `keys create|list|show|revoke` to the program. Keys are printed once, by `create`;
 * hashes never.
 */
export function registerKeysCommands(program: Command): void {
  const keys = program.command('keys').description('create, list, show and revoke virtual keys');
  keys
    .command('create')
    .description('create a virtual key and print it, this once')
    .requiredOption('--name <name>', 'a label for people, e.g. the application holding the key')
    .option('--env <name>', 'environment of the key (default: the configured environment)')
    .option('--models <list>', "comma-separated models the key may use (default: the profile's)")
    .option('--max-tokens <n>', "highest max_tokens the key may ask for (default: the profile's)")
    .option('--expires <when>', 'a duration (12h, 30d) or a UTC date (2027-01-01)')
    .option('--json', 'print JSON')
    .action(create);
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
}
