/** Whether a finding is a credential or personal data; policies act per category. */
export type Category = 'secret' | 'pii';

/** How bad a leak of this kind is, for ranking and alerting. */
export type Severity = 'low' | 'medium' | 'high' | 'critical';

/**
 * One sensitive value found in a text. It never carries the value itself: `start`/`end` point
 * into the text that was scanned (UTF-16 offsets of the original, before any normalising or
 * decoding) and `preview` shows at most a known prefix.
 */
export interface Finding {
  /** Stable detector id, such as `email` or `mistral_api_key`. */
  detector: string;
  category: Category;
  severity: Severity;
  start: number;
  end: number;
  /** A masked hint such as `sk-proj-***` or `jo***`, never enough to rebuild the value. */
  preview: string;
  /** The placeholder label used by redaction, such as `EMAIL` for `[REDACTED:EMAIL]`. */
  label: string;
  /** Set when the value was found inside a base64 run and not in the text as written. */
  encoding?: 'base64';
}

/** A user-supplied regular expression detector, checked for safety when the rules are built. */
export interface CustomPattern {
  id: string;
  /** Bounded quantifiers only (`{0,40}`, `?`); `*`, `+`, `{n,}` and back-references are refused. */
  pattern: string | RegExp;
  category?: Category;
  severity?: Severity;
  /** Placeholder label; defaults to the id in upper case. */
  label?: string;
  /**
   * Words that must appear near a match, so the pattern only runs around them. Without them the
   * pattern scans every text in full, which costs throughput.
   */
  keywords?: string[];
}

/** A list of words or phrases to report wherever they appear as whole words, case-insensitive. */
export interface CustomWordList {
  id: string;
  /** ASCII words or phrases. */
  words: string[];
  category?: Category;
  severity?: Severity;
  label?: string;
}

/** What to look for. The same options object reuses its compiled rules across calls. */
export interface ScanOptions {
  /** Detector ids to run; defaults to every detector that is on by default. */
  detectors?: string[];
  /** Detector ids to skip, applied after `detectors`. */
  disable?: string[];
  /** Extra detectors that are off by default, such as `ip_address`. */
  enable?: string[];
  customPatterns?: CustomPattern[];
  customWords?: CustomWordList[];
  /**
   * Full check of a virtual key candidate. Defaults to shape only (prefix, length, alphabet);
   * pass the checksum check of the key module to drop typos and look-alikes.
   */
  virtualKeyValidator?: (candidate: string) => boolean;
}
