import { inspect } from 'node:util';

const REDACTED = '[redacted]';

/**
 * A secret value that cannot leak by accident: printing, logging, JSON-serialising or
 * inspecting it shows `[redacted]`. Only `reveal()` returns the value, so every use is visible
 * in the code.
 */
export class Secret {
  readonly #value: string;
  /** Where the value was found, e.g. `MISTRAL_API_KEY_PRODUCTION`; safe to show. */
  readonly source: string;

  constructor(value: string, source: string) {
    this.#value = value;
    this.source = source;
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return `Secret(${REDACTED} from ${this.source})`;
  }
}
