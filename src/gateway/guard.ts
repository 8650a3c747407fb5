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
  type SanitizeOptions,
  type Scanner,
  type ScanOptions,
  type StreamRedactor,
  type StreamSanitizer,
  sanitizeOutput,
} from '../guard/index.js';
import { isWellFormedVirtualKey } from '../keys/format.js';
import type { Logger } from '../logging.js';
import { type EndpointSpec, type TextField, textFields } from '../mistral/endpoints.js';

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
    const found: Array<{ field: TextField; text: string; findings: Finding[] }> = [];
    for (const field of textFields(endpoint, body)) {
      const text = field.get();
      if (text.length === 0) continue;
      const findings = guard.scanner.scan(text);
      if (findings.length > 0) found.push({ field, text, findings });
    }
    return found;
  });
  if (hits.length === 0) return;
  const all = hits.flatMap((h) => h.findings);
  const decision = decide(all, guard.input);
  outcome.input = decision;
  if (decision.action === 'block') {
    const at = hits.find((h) => h.findings.some((f) => actionFor(f, guard.input) === 'block'));
    throw new GuardError('sensitive_data_blocked', {
      message: `The request was blocked because it contains sensitive data: ${describe(decision, all, guard.input)} in ${at?.field.path}.`,
      param: at?.field.path ?? null,
    });
  }
  if (decision.action !== 'redact') return;
  for (const { field, text, findings } of hits) {
    const replaced = findings.filter((f) => actionFor(f, guard.input) === 'redact');
    if (replaced.length > 0) field.set(applyRedactions(text, replaced));
  }
}

/** A text of an answer, readable and replaceable in place. */
interface AnswerText {
  get(): string;
  set(value: string): void;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
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
          if (isObject(call) && isObject(call.function)) {
            stringSlot(call.function, 'arguments', out);
          }
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
 * Takes the text out of a streamed delta: `content` as a string, or the text chunks of a chunked
 * content (which are removed; `putText` puts the guarded text back as one chunk).
 */
function takeText(delta: Record<string, unknown>): string {
  const content = delta.content;
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let text = '';
  // Known gap: thinking chunks stay in place unguarded, so reasoning text streamed by a
  // reasoning model reaches the client without redaction.
  delta.content = content.filter((part) => {
    if (!isObject(part) || part.type !== 'text' || typeof part.text !== 'string') return true;
    text += part.text;
    return false;
  });
  return text;
}

function putText(delta: Record<string, unknown>, text: string): void {
  if (Array.isArray(delta.content)) {
    if (text.length > 0) delta.content.push({ type: 'text', text });
  } else if (typeof delta.content === 'string' || text.length > 0) {
    delta.content = text;
  }
}

/** The text pipeline of one streamed choice: redaction, then sanitising. */
interface ChoiceStream {
  redactor: StreamRedactor;
  sanitizer: StreamSanitizer | null;
  seen: number;
  ended: boolean;
}

/**
 * Guards an SSE answer event by event. Each choice's text runs through its own stream redactor,
 * so a value split across events is caught, and the client never sees a prefix of a value that
 * is later redacted; held-back text is released in a later event of the same choice, at its
 * `finish_reason` at the latest. Events are rewritten as JSON, so escaping stays valid.
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
    if (!isObject(chunk) || !Array.isArray(chunk.choices)) return data;
    const template = chunk;
    const choices: unknown[] = chunk.choices;
    const rewritten = guarded(this.#guard, this.#outcome, this.#logger, data, () => {
      this.#template = template;
      choices.forEach((choice: unknown, position: number) => {
        if (!isObject(choice)) return;
        const index = typeof choice.index === 'number' ? choice.index : position;
        const stream = this.#choice(index);
        const delta = isObject(choice.delta) ? choice.delta : null;
        let out = stream.ended ? '' : this.#push(stream, delta ? takeText(delta) : '');
        if (choice.finish_reason != null && !stream.ended) {
          out += this.#end(stream);
          stream.ended = true;
        }
        if (delta) putText(delta, out);
        else if (out.length > 0) choice.delta = { content: out };
      });
      this.#check();
      return JSON.stringify(template);
    });
    if (this.#outcome.uninspected) this.#off = true;
    return rewritten;
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
        stream.ended = true;
        const rest = this.#end(stream);
        if (rest.length === 0) continue;
        const { id, object, created, model } = this.#template ?? {};
        extra.push(
          JSON.stringify({
            id,
            object,
            created,
            model,
            choices: [{ index, delta: { content: rest }, finish_reason: null }],
          }),
        );
      }
      this.#check();
    });
    return extra;
  }

  #choice(index: number): ChoiceStream {
    let stream = this.#choices.get(index);
    if (!stream) {
      const policy = this.#guard.output;
      stream = {
        redactor: createStreamRedactor(this.#guard.scanOptions, {
          redactIf: (f) => redacts(actionFor(f, policy)),
        }),
        sanitizer: this.#guard.sanitize ? createOutputSanitizer(this.#guard.sanitize) : null,
        seen: 0,
        ended: false,
      };
      this.#choices.set(index, stream);
    }
    return stream;
  }

  #push(stream: ChoiceStream, text: string): string {
    if (text.length === 0) return '';
    const safe = stream.redactor.push(text);
    return stream.sanitizer ? stream.sanitizer.push(safe) : safe;
  }

  #end(stream: ChoiceStream): string {
    const rest = stream.redactor.end();
    if (!stream.sanitizer) return rest;
    return stream.sanitizer.push(rest) + stream.sanitizer.end();
  }

  /** Adds new findings to the decision; a blocked finding ends the stream before it is sent. */
  #check(): void {
    let fresh = false;
    for (const stream of this.#choices.values()) {
      const found = stream.redactor.findings;
      if (found.length === stream.seen) continue;
      for (let i = stream.seen; i < found.length; i++) this.#findings.push(found[i]!);
      stream.seen = found.length;
      fresh = true;
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
