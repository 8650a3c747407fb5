import { ConfigError } from '../config/errors.js';
import type { GuardConfig, Profile } from '../config/schema.js';
import { GuardError, isGuardError } from '../errors.js';
import {
  actionFor,
  applyRedactions,
  createOutputSanitizer,
  createScanner,
  createStreamRedactor,
  type Decision,
  decide,
  type Finding,
  type GuardAction,
  type GuardPolicy,
  redactText,
  type SanitizeOptions,
  type Scanner,
  type ScanOptions,
  type StreamRedactor,
  type StreamSanitizer,
  sanitizeOutput,
} from '../guard/index.js';
import { isWellFormedVirtualKey } from '../keys/format.js';
import type { KeyGuard } from '../keys/types.js';
import type { Logger } from '../logging.js';
import { type EndpointSpec, isObject, type TextField, textFields } from '../mistral/endpoints.js';
import { effectiveGuardPolicy, hasGuardRules } from '../policy/policy.js';

/** The content guard of one profile, compiled once at start-up. */
export interface ContentGuard {
  scanner: Scanner;
  scanOptions: ScanOptions;
  input: GuardPolicy;
  output: GuardPolicy;
  onError: 'refuse' | 'allow';
  sanitize: SanitizeOptions | null;
  /** False when answers need no inspection at all (every output action is `allow`, no sanitising). */
  inspectsOutput: boolean;
}

/** What the guard found and did for one request, per direction; counts only. */
export interface GuardOutcome {
  input: Decision | null;
  output: Decision | null;
  /** Set when inspection failed and the profile let the content through unchecked. */
  uninspected: boolean;
}

/**
 * Compiles the guard of every profile that has one enabled. An unsafe or invalid custom pattern
 * is a configuration error, found here rather than on the first request.
 */
export function compileGuards(profiles: Record<string, Profile>): Map<string, ContentGuard> {
  const guards = new Map<string, ContentGuard>();
  const problems = [];
  for (const [env, profile] of Object.entries(profiles)) {
    if (!profile.guard.enabled) continue;
    try {
      guards.set(env, compileGuard(profile.guard));
    } catch (error) {
      problems.push({
        path: `profiles.${env}.guard`,
        message: `the content guard cannot be built: ${(error as Error).message}`,
      });
    }
  }
  if (problems.length) throw new ConfigError(problems);
  return guards;
}

function compileGuard(config: GuardConfig): ContentGuard {
  const scanOptions: ScanOptions = {
    enable: config.enable,
    disable: config.disable,
    customPatterns: config.customPatterns,
    customWords: config.customWords,
    virtualKeyValidator: isWellFormedVirtualKey,
  };
  const outputActions = [
    ...Object.values(config.output.categories),
    ...Object.values(config.output.detectors),
  ];
  return {
    inspectsOutput: config.sanitize.enabled || outputActions.some((a) => a !== 'allow'),
    scanner: createScanner(scanOptions),
    scanOptions,
    input: { categories: config.input.categories, detectors: config.input.detectors },
    output: { categories: config.output.categories, detectors: config.output.detectors },
    onError: config.onError,
    sanitize: config.sanitize.enabled
      ? { allowedLinkHosts: config.sanitize.allowedLinkHosts, stripHtml: config.sanitize.stripHtml }
      : null,
  };
}

// Narrowed guards per profile guard and per key's rules. Authenticated records are cached and
// frozen, so the same rules object comes back on every request of a key until it changes.
const narrowed = new WeakMap<ContentGuard, WeakMap<KeyGuard, ContentGuard>>();

/**
 * The profile's guard with a key's own rules applied: the same compiled scanner, with input and
 * output policies where each action is the stricter of the profile's and the key's. Answers are
 * inspected when either asks for it. Without rules, the profile's guard itself.
 *
 * @example
 * const guard = guardForKey(guards.get(key.environment)!, key.guard);
 * inspectRequest(guard, endpoint, body, outcome, logger);
 */
export function guardForKey(guard: ContentGuard, rules: KeyGuard | null | undefined): ContentGuard {
  if (!rules || (!hasGuardRules(rules.input) && !hasGuardRules(rules.output))) return guard;
  let byRules = narrowed.get(guard);
  const known = byRules?.get(rules);
  if (known) return known;
  const detectors = guard.scanner.rules.detectors;
  const output = effectiveGuardPolicy(guard.output, rules.output, detectors);
  const result: ContentGuard = {
    ...guard,
    input: effectiveGuardPolicy(guard.input, rules.input, detectors),
    output,
    inspectsOutput: guard.inspectsOutput || acts(output),
  };
  if (!byRules) {
    byRules = new WeakMap();
    narrowed.set(guard, byRules);
  }
  byRules.set(rules, result);
  return result;
}

/** True when some category or detector rule of `policy` does more than allow. */
function acts(policy: GuardPolicy): boolean {
  const actions = [
    ...Object.values(policy.categories ?? {}),
    ...Object.values(policy.detectors ?? {}),
  ];
  return actions.some((a) => a !== 'allow');
}

export function newOutcome(): GuardOutcome {
  return { input: null, output: null, uninspected: false };
}

/**
 * Runs `work` under the profile's failure rule: an inspection failure refuses the request, or,
 * when the profile says `allow`, is logged and the content passes unchecked.
 */
function guarded<T>(
  guard: ContentGuard,
  outcome: GuardOutcome,
  logger: Logger,
  fallback: T,
  work: () => T,
): T {
  try {
    return work();
  } catch (error) {
    if (!isGuardError(error) || error.code !== 'inspection_failed' || guard.onError !== 'allow') {
      throw error;
    }
    outcome.uninspected = true;
    logger.warn({ err: error.cause }, 'content inspection failed; passed unchecked by policy');
    return fallback;
  }
}

/** Counts per category as the readable list that block messages carry: `secret (openai_api_key)`. */
function describe(decision: Decision, findings: Finding[], policy: GuardPolicy): string {
  const byCategory = new Map<string, Set<string>>();
  for (const f of findings) {
    if (actionFor(f, policy) !== 'block') continue;
    const set = byCategory.get(f.category) ?? new Set<string>();
    set.add(f.detector);
    byCategory.set(f.category, set);
  }
  if (byCategory.size === 0) return Object.keys(decision.categories).join(', ');
  return [...byCategory].map(([c, d]) => `${c} (${[...d].sort().join(', ')})`).join(', ');
}

/** Text chunks of one message content: `messages[1].content[3].text` and thinking texts. */
const CHUNK_TEXT = /^(.*\.content)\[\d+\](?:\.thinking\[\d+\])?\.text$/;

/** Fields scanned as one text: the chunks of one message content, or a field alone. */
interface FieldGroup {
  fields: TextField[];
  texts: string[];
  /** Where each field starts in the joined text. */
  starts: number[];
  joined: string;
}

/**
 * Groups the chunks of each message content, in order: the model reads them as one text, so a
 * value split over two chunks must be found as one.
 */
function groupFields(fields: TextField[]): FieldGroup[] {
  const groups: FieldGroup[] = [];
  const byContent = new Map<string, FieldGroup>();
  for (const field of fields) {
    const text = field.get();
    if (text.length === 0) continue;
    const content = CHUNK_TEXT.exec(field.path)?.[1];
    let group = content === undefined ? undefined : byContent.get(content);
    if (!group) {
      group = { fields: [], texts: [], starts: [], joined: '' };
      groups.push(group);
      if (content !== undefined) byContent.set(content, group);
    }
    group.fields.push(field);
    group.texts.push(text);
    group.starts.push(group.joined.length);
    group.joined += text;
  }
  return groups;
}

/**
 * Replaces `findings` (offsets into the joined text) in each field of the group. A value split
 * over several fields leaves its placeholder in the first and nothing of itself in the others.
 */
function redactGroup(group: FieldGroup, findings: Finding[]): void {
  group.fields.forEach((field, i) => {
    const start = group.starts[i]!;
    const text = group.texts[i]!;
    const end = start + text.length;
    const local: Finding[] = [];
    for (const f of findings) {
      if (f.end <= start || f.start >= end) continue;
      const from = Math.max(f.start, start) - start;
      const to = Math.min(f.end, end) - start;
      // Only the piece where the value starts carries the placeholder.
      local.push({ ...f, start: from, end: to, label: f.start >= start ? f.label : '' });
    }
    if (local.length === 0) return;
    let out = '';
    let at = 0;
    for (const f of local) {
      out += text.slice(at, f.start) + (f.label === '' ? '' : `[REDACTED:${f.label}]`);
      at = f.end;
    }
    field.set(out + text.slice(at));
  });
}

/**
 * Inspects every text of a validated request. Blocks with 400 `sensitive_data_blocked` naming
 * the categories, detectors and the first field (never the value), or replaces the values the
 * policy redacts, in place, before the body is forwarded.
 */
export function inspectRequest(
  guard: ContentGuard,
  endpoint: EndpointSpec,
  body: Record<string, unknown>,
  outcome: GuardOutcome,
  logger: Logger,
): void {
  const hits = guarded(guard, outcome, logger, [], () => {
    const found: Array<{ group: FieldGroup; findings: Finding[] }> = [];
    for (const group of groupFields(textFields(endpoint, body))) {
      const findings = guard.scanner.scan(group.joined);
      if (findings.length > 0) found.push({ group, findings });
    }
    return found;
  });
  if (hits.length === 0) return;
  const all = hits.flatMap((h) => h.findings);
  const decision = decide(all, guard.input);
  outcome.input = decision;
  if (decision.action === 'block') {
    let param: string | null = null;
    for (const { group, findings } of hits) {
      const blocked = findings.find((f) => actionFor(f, guard.input) === 'block');
      if (!blocked) continue;
      const i = group.starts.findLastIndex((start) => start <= blocked.start);
      param = group.fields[Math.max(0, i)]!.path;
      break;
    }
    throw new GuardError('sensitive_data_blocked', {
      message: `The request was blocked because it contains sensitive data: ${describe(decision, all, guard.input)} in ${param}.`,
      param,
    });
  }
  if (decision.action !== 'redact') return;
  for (const { group, findings } of hits) {
    const replaced = findings.filter((f) => actionFor(f, guard.input) === 'redact');
    if (replaced.length > 0) redactGroup(group, replaced);
  }
}

/** A text of an answer, readable and replaceable in place. */
interface AnswerText {
  get(): string;
  set(value: string): void;
}

function stringSlot(owner: Record<string, unknown>, key: string, out: AnswerText[]): void {
  if (typeof owner[key] !== 'string') return;
  out.push({
    get: () => owner[key] as string,
    set: (value) => {
      owner[key] = value;
    },
  });
}

/** A string, or a JSON value read as its text and stored parsed again when still JSON. */
function jsonSlot(owner: Record<string, unknown>, key: string, out: AnswerText[]): void {
  const value = owner[key];
  if (typeof value === 'string') {
    stringSlot(owner, key, out);
    return;
  }
  if (typeof value !== 'object' || value === null) return;
  out.push({
    get: () => JSON.stringify(owner[key]),
    set: (text) => {
      try {
        owner[key] = JSON.parse(text);
      } catch {
        owner[key] = text;
      }
    },
  });
}

/** The fields of an upstream error body that carry the upstream's own text. */
const ERROR_TEXT_FIELDS = ['message', 'param', 'code', 'type'] as const;

/**
 * Redacts every finding in an upstream error's texts, whatever the output policy: an error
 * echoes what the caller sent, and the upstream's wording is not ours to vouch for. Without a
 * guard (turned off in the profile) the default detectors apply, as for the caller's own texts.
 */
export function redactErrorMessage(guard: ContentGuard | undefined, body: unknown): void {
  if (!isObject(body)) return;
  for (const field of ERROR_TEXT_FIELDS) {
    const text = body[field];
    if (typeof text !== 'string' || text === '') continue;
    body[field] = guard ? guard.scanner.redact(text).text : redactText(text).text;
  }
}

/** The texts a model wrote in a JSON answer: message contents, tool arguments, OCR markdown. */
function answerTexts(json: unknown): AnswerText[] {
  const out: AnswerText[] = [];
  if (!isObject(json)) return out;
  if (Array.isArray(json.choices)) {
    for (const choice of json.choices) {
      if (!isObject(choice)) continue;
      if (typeof choice.text === 'string') stringSlot(choice, 'text', out);
      const message = choice.message;
      if (!isObject(message)) continue;
      contentSlots(message, out);
      if (Array.isArray(message.tool_calls)) {
        for (const call of message.tool_calls) {
          if (isObject(call) && isObject(call.function)) jsonSlot(call.function, 'arguments', out);
        }
      }
    }
  }
  if (Array.isArray(json.pages)) {
    for (const page of json.pages) if (isObject(page)) stringSlot(page, 'markdown', out);
  }
  return out;
}

/** `content` as a string, or the `text` of each text chunk (and of thinking chunks). */
function contentSlots(owner: Record<string, unknown>, out: AnswerText[]): void {
  if (typeof owner.content === 'string') {
    stringSlot(owner, 'content', out);
    return;
  }
  if (!Array.isArray(owner.content)) return;
  for (const chunk of owner.content) {
    if (!isObject(chunk)) continue;
    if (chunk.type === 'text') stringSlot(chunk, 'text', out);
    else if (chunk.type === 'thinking' && Array.isArray(chunk.thinking)) {
      contentSlots({ content: chunk.thinking }, out);
    }
  }
}

/**
 * Inspects a buffered answer before it is sent: redacts what the output policy redacts, then
 * sanitises for display when the profile asks. A blocked answer is withheld whole.
 */
export function inspectAnswer(
  guard: ContentGuard,
  json: unknown,
  outcome: GuardOutcome,
  logger: Logger,
): void {
  const texts = answerTexts(json);
  if (texts.length === 0) return;
  const all: Finding[] = [];
  guarded(guard, outcome, logger, undefined, () => {
    const replacements: Array<[AnswerText, string]> = [];
    for (const slot of texts) {
      const text = slot.get();
      const findings = guard.scanner.scan(text);
      all.push(...findings);
      const replaced = findings.filter((f) => redacts(actionFor(f, guard.output)));
      let next = replaced.length ? applyRedactions(text, replaced) : text;
      if (guard.sanitize) next = sanitizeOutput(next, guard.sanitize);
      if (next !== text) replacements.push([slot, next]);
    }
    if (all.length > 0) outcome.output = decide(all, guard.output);
    if (outcome.output?.action === 'block') {
      throw new GuardError('sensitive_data_blocked', {
        message: `The answer was withheld because it contains sensitive data: ${describe(outcome.output, all, guard.output)}.`,
      });
    }
    for (const [slot, value] of replacements) slot.set(value);
  });
}

function redacts(action: GuardAction): boolean {
  return action === 'redact' || action === 'block';
}

/**
 * Takes the text out of a streamed delta's content: a string, or the text chunks (and, into
 * `thinking`, the text of thinking chunks) of a chunked content, which are removed from it;
 * `putContent` puts the guarded texts back.
 */
function takeContent(delta: Record<string, unknown>): { text: string; thinking: string } {
  const content = delta.content;
  if (typeof content === 'string') return { text: content, thinking: '' };
  if (!Array.isArray(content)) return { text: '', thinking: '' };
  let text = '';
  let thinking = '';
  delta.content = content.filter((part) => {
    if (!isObject(part)) return true;
    if (part.type === 'text' && typeof part.text === 'string') {
      text += part.text;
      return false;
    }
    if (part.type === 'thinking' && Array.isArray(part.thinking)) {
      const inner = part.thinking.filter((t) => !(isObject(t) && typeof t.text === 'string'));
      for (const t of part.thinking)
        if (isObject(t) && typeof t.text === 'string') thinking += t.text;
      // A thinking chunk with nothing but text is replaced whole by the guarded one.
      return inner.length > 0;
    }
    return true;
  });
  return { text, thinking };
}

function putContent(delta: Record<string, unknown>, text: string, thinking: string): void {
  if (Array.isArray(delta.content)) {
    if (thinking.length > 0) {
      delta.content.unshift({ type: 'thinking', thinking: [{ type: 'text', text: thinking }] });
    }
    if (text.length > 0) delta.content.push({ type: 'text', text });
  } else if (thinking.length > 0) {
    delta.content = [
      { type: 'thinking', thinking: [{ type: 'text', text: thinking }] },
      ...(text.length > 0 ? [{ type: 'text', text }] : []),
    ];
  } else if (typeof delta.content === 'string' || text.length > 0) {
    delta.content = text;
  }
}

/** One text of a streamed choice (its answer, its reasoning, one tool call's arguments). */
interface Lane {
  redactor: StreamRedactor;
  sanitizer: StreamSanitizer | null;
  seen: number;
}

/** The lanes of one streamed choice. */
interface ChoiceStream {
  text: Lane;
  thinking: Lane | null;
  tools: Map<number, Lane>;
  ended: boolean;
}

/**
 * Guards an SSE answer event by event. Each text of each choice (the answer, the reasoning of a
 * thinking model, the arguments of each tool call) runs through its own stream redactor, so a
 * value split across events is caught and the client never sees a prefix of a value that is
 * later redacted; held-back text is released in a later event of the same choice, at its
 * `finish_reason` at the latest. Events are rewritten as JSON, so escaping stays valid. Events
 * without choices (an error the upstream sent mid-stream) have their message redacted whole.
 */
export class StreamGuard {
  readonly #guard: ContentGuard;
  readonly #outcome: GuardOutcome;
  readonly #logger: Logger;
  readonly #choices = new Map<number, ChoiceStream>();
  readonly #findings: Finding[] = [];
  #template: Record<string, unknown> | null = null;
  #off = false;

  constructor(guard: ContentGuard, outcome: GuardOutcome, logger: Logger) {
    this.#guard = guard;
    this.#outcome = outcome;
    this.#logger = logger;
  }

  /** Rewrites one event's data; throws GuardError to end the stream (blocked, or unreadable). */
  event(data: string): string {
    if (this.#off) return data;
    let chunk: unknown;
    try {
      chunk = JSON.parse(data);
    } catch (cause) {
      // Text the guard cannot read is not passed on unread.
      throw new GuardError('upstream_error', { cause });
    }
    if (!isObject(chunk)) return data;
    const template = chunk;
    const rewritten = guarded(this.#guard, this.#outcome, this.#logger, data, () => {
      if (!Array.isArray(template.choices)) {
        if (typeof template.message !== 'string') return data;
        template.message = this.#guard.scanner.redact(template.message).text;
        return JSON.stringify(template);
      }
      this.#template = template;
      template.choices.forEach((choice: unknown, position: number) => {
        if (isObject(choice)) this.#rewriteChoice(choice, position);
      });
      this.#check();
      return JSON.stringify(template);
    });
    if (this.#outcome.uninspected) this.#off = true;
    return rewritten;
  }

  #rewriteChoice(choice: Record<string, unknown>, position: number): void {
    const index = typeof choice.index === 'number' ? choice.index : position;
    const stream = this.#choice(index);
    if (!isObject(choice.delta)) choice.delta = {};
    const delta = choice.delta as Record<string, unknown>;
    const finishing = choice.finish_reason != null && !stream.ended;
    const taken = takeContent(delta);
    let text = stream.ended ? '' : this.#push(stream.text, taken.text);
    let thinking = '';
    if (taken.thinking.length > 0 || (finishing && stream.thinking)) {
      stream.thinking ??= this.#lane(false);
      thinking = stream.ended ? '' : this.#push(stream.thinking, taken.thinking);
    }
    const calls: unknown[] = Array.isArray(delta.tool_calls) ? delta.tool_calls : [];
    calls.forEach((call, position) => {
      if (!isObject(call) || !isObject(call.function)) return;
      const args = call.function.arguments;
      if (typeof args !== 'string') return;
      const k = typeof call.index === 'number' ? call.index : position;
      let lane = stream.tools.get(k);
      if (!lane) {
        lane = this.#lane(false);
        stream.tools.set(k, lane);
      }
      call.function.arguments = stream.ended ? '' : this.#push(lane, args);
    });
    if (finishing) {
      text += this.#end(stream.text);
      if (stream.thinking) thinking += this.#end(stream.thinking);
      for (const [k, lane] of stream.tools) {
        const rest = this.#end(lane);
        if (rest.length === 0) continue;
        const call = calls.find((c) => isObject(c) && c.index === k) as
          | { function: { arguments: string } }
          | undefined;
        if (call) call.function.arguments += rest;
        else calls.push({ index: k, function: { arguments: rest } });
      }
      if (calls.length > 0) delta.tool_calls = calls;
      stream.ended = true;
    }
    putContent(delta, text, thinking);
  }

  /**
   * Events to send before `[DONE]` for choices that never reported a finish reason, so no
   * held-back text is lost; then the output decision is final.
   */
  finish(): string[] {
    if (this.#off) return [];
    const extra: string[] = [];
    guarded(this.#guard, this.#outcome, this.#logger, undefined, () => {
      for (const [index, stream] of this.#choices) {
        if (stream.ended) continue;
        const { id, object, created, model } = this.#template ?? {};
        const choice: Record<string, unknown> = { index, delta: {}, finish_reason: 'stop' };
        this.#rewriteChoice(choice, index);
        choice.finish_reason = null;
        if (Object.keys(choice.delta as object).length === 0) continue;
        extra.push(JSON.stringify({ id, object, created, model, choices: [choice] }));
      }
      this.#check();
    });
    return extra;
  }

  #lane(sanitize: boolean): Lane {
    const policy = this.#guard.output;
    return {
      redactor: createStreamRedactor(this.#guard.scanOptions, {
        redactIf: (f) => redacts(actionFor(f, policy)),
      }),
      sanitizer:
        sanitize && this.#guard.sanitize ? createOutputSanitizer(this.#guard.sanitize) : null,
      seen: 0,
    };
  }

  #choice(index: number): ChoiceStream {
    let stream = this.#choices.get(index);
    if (!stream) {
      stream = { text: this.#lane(true), thinking: null, tools: new Map(), ended: false };
      this.#choices.set(index, stream);
    }
    return stream;
  }

  #push(lane: Lane, text: string): string {
    if (text.length === 0) return '';
    const safe = lane.redactor.push(text);
    return lane.sanitizer ? lane.sanitizer.push(safe) : safe;
  }

  #end(lane: Lane): string {
    const rest = lane.redactor.end();
    if (!lane.sanitizer) return rest;
    return lane.sanitizer.push(rest) + lane.sanitizer.end();
  }

  /** Adds new findings to the decision; a blocked finding ends the stream before it is sent. */
  #check(): void {
    let fresh = false;
    const collect = (lane: Lane) => {
      const found = lane.redactor.findings;
      if (found.length === lane.seen) return;
      for (let i = lane.seen; i < found.length; i++) this.#findings.push(found[i]!);
      lane.seen = found.length;
      fresh = true;
    };
    for (const stream of this.#choices.values()) {
      collect(stream.text);
      if (stream.thinking) collect(stream.thinking);
      for (const lane of stream.tools.values()) collect(lane);
    }
    if (!fresh) return;
    this.#outcome.output = decide(this.#findings, this.#guard.output);
    if (this.#outcome.output.action === 'block') {
      throw new GuardError('sensitive_data_blocked', {
        message: `The answer was stopped because it contains sensitive data: ${describe(this.#outcome.output, this.#findings, this.#guard.output)}.`,
      });
    }
  }
}

/** The audit summary of a guard outcome: the action per direction and counts per detector. */
export function auditSummary(
  outcome: GuardOutcome | null,
): { action: string; findings: Record<string, number> } | null {
  if (!outcome || (!outcome.input && !outcome.output && !outcome.uninspected)) return null;
  const actions: string[] = [];
  const findings: Record<string, number> = {};
  for (const [direction, decision] of [
    ['input', outcome.input],
    ['output', outcome.output],
  ] as const) {
    if (!decision) continue;
    actions.push(`${direction}:${decision.action}`);
    for (const [detector, n] of Object.entries(decision.byDetector)) {
      findings[`${direction}.${detector}`] = n;
    }
  }
  if (outcome.uninspected) actions.push('uninspected');
  return { action: actions.join(' '), findings };
}
