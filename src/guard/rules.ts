import type { Detector } from './detector.js';
import { paymentCard } from './detectors/card.js';
import { awsAccessKeyId, awsSecretKey, gcpServiceAccount } from './detectors/cloud.js';
import { connectionString } from './detectors/connection-string.js';
import { customPatternDetector, customWordDetector } from './detectors/custom.js';
import { email } from './detectors/email.js';
import { iban } from './detectors/iban.js';
import { ipAddress } from './detectors/ip.js';
import { jwt } from './detectors/jwt.js';
import { mistralApiKey } from './detectors/mistral.js';
import { pemPrivateKey } from './detectors/pem.js';
import { phoneNumber } from './detectors/phone.js';
import {
  anthropicKey,
  openaiKey,
  slackToken,
  slackWebhook,
  stripeKey,
} from './detectors/provider-keys.js';
import { secretAssignment } from './detectors/secret-assignment.js';
import { usSsn } from './detectors/ssn.js';
import { githubToken, gitlabToken } from './detectors/vcs-tokens.js';
import { createVirtualKeyDetector } from './detectors/virtual-key.js';
import { type Automaton, buildAutomaton, MAX_BASE64 } from './prefilter.js';
import type { ScanOptions } from './types.js';

const DEFAULT_VIRTUAL_KEY = createVirtualKeyDetector();

/** Every built-in detector, in no particular order (priority settles overlaps). */
export const BUILT_IN: readonly Detector[] = [
  mistralApiKey,
  DEFAULT_VIRTUAL_KEY,
  openaiKey,
  anthropicKey,
  awsAccessKeyId,
  awsSecretKey,
  gcpServiceAccount,
  githubToken,
  gitlabToken,
  slackToken,
  slackWebhook,
  stripeKey,
  jwt,
  pemPrivateKey,
  connectionString,
  secretAssignment,
  paymentCard,
  email,
  phoneNumber,
  iban,
  usSsn,
  ipAddress,
];

/** A rule set compiled once: detectors, the keyword automaton and the stream bounds. */
export interface Rules {
  detectors: Detector[];
  automaton: Automaton;
  /** For each keyword id, the indices of the detectors it starts. */
  keywordDetectors: number[][];
  numeric: Detector[];
  minDigits: number;
  scanAll: Detector[];
  /**
   * The most characters a stream redactor holds back: the longest reach of any detector from a
   * keyword hit, and the tail any detector needs with no hit at all.
   */
  maxHoldBack: number;
  /** Tail held back when no keyword, `@` or open run is near the end. */
  baseHoldBack: number;
  /** Released text kept as left context, so a value after it is judged as in the whole text. */
  lookBehind: number;
}

function select(options: ScanOptions): Detector[] {
  const known = new Map(BUILT_IN.map((d) => [d.id, d]));
  if (options.virtualKeyValidator) {
    known.set('virtual_key', createVirtualKeyDetector(options.virtualKeyValidator));
  }
  const named = [
    ...(options.detectors ?? []),
    ...(options.enable ?? []),
    ...(options.disable ?? []),
  ];
  for (const id of named) if (!known.has(id)) throw new TypeError(`unknown detector: ${id}`);
  let ids = options.detectors ?? [...known.values()].filter((d) => !d.optIn).map((d) => d.id);
  ids = [...new Set([...ids, ...(options.enable ?? [])])];
  const disabled = new Set(options.disable ?? []);
  const chosen = ids.filter((id) => !disabled.has(id)).map((id) => known.get(id)!);
  for (const p of options.customPatterns ?? []) chosen.push(customPatternDetector(p));
  for (const w of options.customWords ?? []) chosen.push(customWordDetector(w));
  const seen = new Set<string>();
  for (const d of chosen) {
    if (seen.has(d.id)) throw new TypeError(`duplicate detector id: ${d.id}`);
    seen.add(d.id);
  }
  return chosen;
}

/** Compiles a rule set. Throws a TypeError for unknown ids or unsafe custom patterns. */
export function compileRules(options: ScanOptions = {}): Rules {
  const detectors = select(options);
  const keywords: string[] = [];
  const keywordDetectors: number[][] = [];
  const index = new Map<string, number>();
  detectors.forEach((d, di) => {
    for (const k of d.keywords ?? []) {
      let id = index.get(k);
      if (id === undefined) {
        id = keywords.length;
        index.set(k, id);
        keywords.push(k);
        keywordDetectors.push([]);
      }
      keywordDetectors[id]!.push(di);
    }
  });
  const automaton = buildAutomaton(keywords);
  const numeric = detectors.filter((d) => d.minDigits !== undefined);
  const minDigits = Math.min(Infinity, ...numeric.map((d) => d.minDigits!));
  // Number detectors decide from a value and a few characters around it; 80 covers the longest
  // raw phone pattern match (15 digits with separators and brackets) and a printed IBAN.
  const numericHold = numeric.length > 0 ? 80 : 0;
  const baseHoldBack = Math.max(
    automaton.longest,
    numericHold,
    ...detectors.map((d) => d.tailHold),
  );
  const maxHoldBack = Math.max(
    baseHoldBack,
    MAX_BASE64 + 2,
    ...detectors.map((d) => d.lead + d.reach),
  );
  const lookBehind = Math.max(
    MAX_BASE64 + 2,
    numericHold,
    ...detectors.map((d) => d.lookBehind + d.lead),
  );
  return {
    detectors,
    automaton,
    keywordDetectors,
    numeric,
    minDigits,
    scanAll: detectors.filter((d) => d.scanAll !== undefined),
    maxHoldBack,
    baseHoldBack,
    lookBehind,
  };
}
