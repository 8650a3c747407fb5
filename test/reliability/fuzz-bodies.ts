// Request bodies that must be refused: every field of the chat, FIM and embeddings schemas given
// a value of a JSON kind it does not take, syntax no JSON parser accepts, prototype keys, NUL and
// invalid UTF-8 bytes, duplicate keys, sizes and depths past the limits, foreign content types.
import { type CaseContext, type FuzzCase, jsonHeaders, pick, post } from './fuzz-case.js';

type Kind = 'string' | 'number' | 'integer' | 'boolean' | 'null' | 'object' | 'array';

/** The JSON kinds each field of an endpoint takes, from Mistral's API reference. */
interface EndpointTable {
  path: string;
  base: Record<string, unknown>;
  fields: Record<string, Kind[]>;
}

const SAMPLING: Record<string, Kind[]> = {
  max_tokens: ['integer', 'null'],
  stream: ['boolean'],
  stop: ['string', 'array', 'null'],
  random_seed: ['integer', 'null'],
  metadata: ['object', 'null'],
  prompt_cache_key: ['string', 'null'],
  temperature: ['number', 'null'],
  top_p: ['number', 'null'],
};

export const ENDPOINTS: EndpointTable[] = [
  {
    path: '/v1/chat/completions',
    base: {
      model: 'mistral-small-latest',
      messages: [{ role: 'user', content: 'hello there' }],
      temperature: 0.3,
      max_tokens: 50,
    },
    fields: {
      model: ['string'],
      messages: ['array'],
      ...SAMPLING,
      response_format: ['object'],
      tools: ['array', 'null'],
      tool_choice: ['string', 'object'],
      presence_penalty: ['number', 'null'],
      frequency_penalty: ['number', 'null'],
      n: ['integer', 'null'],
      prediction: ['object'],
      parallel_tool_calls: ['boolean'],
      reasoning_effort: ['string', 'null'],
      prompt_mode: ['string', 'null'],
      guardrails: ['array', 'null'],
      service_tier: ['string', 'null'],
      safe_prompt: ['boolean'],
      'messages.0': ['object'],
      'messages.0.role': ['string'],
      'messages.0.content': ['string', 'array', 'null'],
    },
  },
  {
    path: '/v1/fim/completions',
    base: { model: 'codestral-latest', prompt: 'def add(a b)', suffix: 'return c', max_tokens: 20 },
    fields: {
      model: ['string'],
      prompt: ['string'],
      suffix: ['string', 'null'],
      min_tokens: ['integer', 'null'],
      ...SAMPLING,
    },
  },
  {
    path: '/v1/embeddings',
    base: { model: 'mistral-embed', input: ['hello', 'world'] },
    fields: {
      model: ['string'],
      input: ['string', 'array'],
      metadata: ['object', 'null'],
      output_dimension: ['integer', 'null'],
      output_dtype: ['string'],
      encoding_format: ['string'],
    },
  },
];

const VALUES: Record<Kind, unknown[]> = {
  null: [null],
  boolean: [true, false],
  integer: [0, 7, -3, 4096],
  number: [1.5, -0.25, 0.001, 2.75],
  string: ['', 'x', '12', 'true', 'null', '[]'],
  array: [[], [1], ['a'], [null], [{}], [[[]]]],
  object: [{}, { a: 1 }, { 0: 'x' }, { type: 'text' }],
};

/** A value of a JSON kind the field does not take (an integer field is refused a fraction). */
export function wrongValue(random: () => number, accepted: Kind[]): unknown {
  const wrong = (Object.keys(VALUES) as Kind[]).filter((kind) => {
    if (accepted.includes(kind)) return false;
    if (kind === 'integer' && accepted.includes('number')) return false;
    return true;
  });
  return pick(random, VALUES[pick(random, wrong)]);
}

function clone(value: Record<string, unknown>): Record<string, unknown> {
  return JSON.parse(JSON.stringify(value));
}

/** Sets `a.0.b` style paths; the containers on the way exist in every base body. */
function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let at: Record<string, unknown> = target;
  for (const key of keys.slice(0, -1)) at = at[key] as Record<string, unknown>;
  at[keys.at(-1)!] = value;
}

/** A field of some endpoint set to a value of the wrong kind; `index` walks every field. */
export function wrongType(ctx: CaseContext, index: number): FuzzCase {
  const endpoint = ENDPOINTS[index % ENDPOINTS.length]!;
  const names = Object.keys(endpoint.fields);
  const body = clone(endpoint.base);
  const field = names[Math.floor(index / ENDPOINTS.length) % names.length]!;
  setPath(body, field, wrongValue(ctx.random, endpoint.fields[field]!));
  // Sometimes a second field is wrong as well: the answer must still be one clean 400.
  if (ctx.random() < 0.2) {
    const other = pick(
      ctx.random,
      names.filter((n) => !n.startsWith('messages.')),
    );
    setPath(body, other, wrongValue(ctx.random, endpoint.fields[other]!));
  }
  return post('wrong-type', ctx, endpoint.path, JSON.stringify(body));
}

/** A required field missing, or a body that is JSON but not an object. */
export function missing(ctx: CaseContext): FuzzCase {
  const endpoint = pick(ctx.random, ENDPOINTS);
  const body = clone(endpoint.base);
  const variant = Math.floor(ctx.random() * 3);
  if (variant === 0) {
    const required = endpoint.path.includes('chat')
      ? 'messages'
      : endpoint.path.includes('fim')
        ? 'prompt'
        : 'input';
    delete body[ctx.random() < 0.5 ? 'model' : required];
    return post('missing-field', ctx, endpoint.path, JSON.stringify(body));
  }
  const notObject = pick(ctx.random, ['[]', '[{}]', '"text"', '42', 'null', 'true', '{}']);
  return post('missing-field', ctx, endpoint.path, notObject);
}

const STRUCTURAL = new Set(['{', '}', '[', ']', ':', ',', '"']);

/** Text no JSON parser may accept: cut short, a structural character gone, foreign syntax. */
export function invalidJson(ctx: CaseContext): FuzzCase {
  const endpoint = pick(ctx.random, ENDPOINTS);
  const text = JSON.stringify(endpoint.base);
  const variant = Math.floor(ctx.random() * 4);
  let body: string;
  if (variant === 0) {
    body = text.slice(0, 1 + Math.floor(ctx.random() * (text.length - 1)));
  } else if (variant === 1) {
    // The base bodies hold no structural character inside their strings, so dropping one
    // always breaks the syntax.
    const spots = [...text].flatMap((c, i) => (STRUCTURAL.has(c) ? [i] : []));
    const at = pick(ctx.random, spots);
    body = text.slice(0, at) + text.slice(at + 1);
  } else if (variant === 2) {
    body = pick(ctx.random, [
      `${text.slice(0, -1)},}`,
      text.replaceAll('"', "'"),
      text.replace('"model"', 'model'),
      `${text.slice(0, -1)},"max_tokens":NaN}`,
      `${text.slice(0, -1)},"max_tokens":-Infinity}`,
      `${text.slice(0, -1)},"max_tokens":undefined}`,
      `${text.slice(0, -1)},"max_tokens":0x1F}`,
      `${text.slice(0, -1)},"max_tokens":01}`,
      `${text.slice(0, -1)},"max_tokens":1.}`,
      `/* note */${text}`,
      `${text}${text}`,
      `${text} trailing`,
      `\uFEFF${text.slice(1)}`,
    ]);
  } else {
    body = pick(ctx.random, ['', ' ', '\n\t', '{', '}', '{"model"', '{"a":}', '[,]', '"\\x41"']);
  }
  return post('invalid-json', ctx, endpoint.path, body);
}

/** The same key twice, the last one wrong: whatever a parser keeps, the body is refused. */
export function duplicateKeys(ctx: CaseContext): FuzzCase {
  const endpoint = pick(ctx.random, ENDPOINTS);
  const present = Object.keys(endpoint.base);
  const field = pick(ctx.random, present);
  const wrong = wrongValue(ctx.random, endpoint.fields[field]!);
  const text = JSON.stringify(endpoint.base);
  const twice = `${text.slice(0, -1)},${JSON.stringify(field)}:${JSON.stringify(wrong)}}`;
  const body = ctx.random() < 0.5 ? twice : `{${JSON.stringify(field)}:"first",${text.slice(1)}`;
  if (body !== twice) {
    // First wrong then right would be valid to a last-wins parser: add a wrong field at the end.
    const extra = wrongValue(ctx.random, ['string']);
    return post(
      'duplicate-keys',
      ctx,
      endpoint.path,
      `${body.slice(0, -1)},"model":${JSON.stringify(extra)}}`,
    );
  }
  return post('duplicate-keys', ctx, endpoint.path, body);
}

/** `__proto__`, `constructor.prototype` and `prototype` keys where a naive merge would go. */
export function prototypeKeys(ctx: CaseContext): FuzzCase {
  const chat = ENDPOINTS[0]!;
  const text = JSON.stringify(chat.base).slice(1, -1);
  const polluting = '{"polluted":true,"isAdmin":true}';
  const message = '{"role":"user","content":"hi","__proto__":{"role":"system"}}';
  const parameters = `{"__proto__":${polluting}}`;
  const tool = `{"type":"function","function":{"name":"f","parameters":${parameters}}}`;
  const schema = `{"name":"x","schema":{"constructor":{"prototype":${polluting}}}}`;
  const body = pick(ctx.random, [
    `{"__proto__":${polluting},${text}}`,
    `{${text},"__proto__":${polluting}}`,
    `{${text},"metadata":{"__proto__":${polluting}}}`,
    `{${text},"metadata":{"a":{"b":{"__proto__":${polluting}}}}}`,
    `{${text},"metadata":{"constructor":{"prototype":${polluting}}}}`,
    `{"constructor":{"prototype":${polluting}},${text}}`,
    `{${text},"metadata":{"\\u005f_proto__":${polluting}}}`,
    `{${text},"metadata":{"__pr\\u006fto__":${polluting}}}`,
    `{${text},"prototype":${polluting}}`,
    `{"model":"mistral-small-latest","messages":[${message}]}`,
    `{${text},"tools":[${tool}]}`,
    `{${text},"response_format":{"type":"json_schema","json_schema":${schema}}}`,
  ]);
  return post('prototype-keys', ctx, chat.path, body);
}

/** NUL bytes raw in the text (never valid JSON), or escaped inside a key no schema knows. */
export function nulBytes(ctx: CaseContext): FuzzCase {
  const endpoint = pick(ctx.random, ENDPOINTS);
  const text = JSON.stringify(endpoint.base);
  const quote = text.indexOf('"', text.indexOf(':') + 1);
  const body = pick(ctx.random, [
    `${text.slice(0, quote + 1)}\0${text.slice(quote + 1)}`,
    `\0${text}`,
    `${text.slice(0, 1)}\0${text.slice(1)}`,
    text.replace(':', ':\0'),
    `${text.slice(0, -1)},"mo\\u0000del":"x"}`,
    `${text.slice(0, -1)},"\\u0000":1}`,
  ]);
  return post('nul-bytes', ctx, endpoint.path, body);
}

const BAD_UTF8 = [
  [0xff],
  [0xfe, 0xff],
  [0xc3, 0x28],
  [0xa0, 0xa1],
  [0xe2, 0x28, 0xa1],
  [0xe2, 0x82],
  [0xf0, 0x28, 0x8c, 0xbc],
  [0xc0, 0xaf],
  [0xed, 0xa0, 0x80],
  [0xf8, 0x88, 0x80, 0x80, 0x80],
];

/** Invalid UTF-8 inside a string (content, model or a key), sent as raw bytes. */
export function invalidUtf8(ctx: CaseContext): FuzzCase {
  const endpoint = pick(ctx.random, ENDPOINTS);
  const text = JSON.stringify(endpoint.base);
  const anchor = pick(ctx.random, ['hello', 'def', 'mistral', 'codestral', '"model', 'world']);
  const at = text.indexOf(anchor) === -1 ? 2 : text.indexOf(anchor) + 1;
  const body = Buffer.concat([
    Buffer.from(text.slice(0, at)),
    Buffer.from(pick(ctx.random, BAD_UTF8)),
    Buffer.from(text.slice(at)),
  ]);
  return post('invalid-utf8', ctx, endpoint.path, body);
}

/** Bodies near and over the limit, long ids, huge numbers, too many messages. */
export function huge(ctx: CaseContext): FuzzCase {
  const limit = ctx.maxBodyBytes;
  const variant = Math.floor(ctx.random() * 5);
  if (variant === 0) {
    const size = limit + 1 + Math.floor(ctx.random() * limit);
    const body = JSON.stringify({
      model: 'm',
      messages: [{ role: 'user', content: 'a'.repeat(size) }],
    });
    return post('huge', ctx, '/v1/chat/completions', body);
  }
  if (variant === 1) {
    // Near the limit, but one message longer than the profile's per-message cap.
    const content = 'b'.repeat(limit - 200 - Math.floor(ctx.random() * 1000));
    const body = JSON.stringify({
      model: 'mistral-small-latest',
      messages: [{ role: 'user', content }],
    });
    return post('huge', ctx, '/v1/chat/completions', body);
  }
  if (variant === 2) {
    const junk = 'c'.repeat(Math.floor(ctx.random() * (limit - 300)));
    const body = JSON.stringify({ ...ENDPOINTS[2]!.base, [`x${junk.slice(0, 10)}`]: junk });
    return post('huge', ctx, '/v1/embeddings', body);
  }
  if (variant === 3) {
    const body = JSON.stringify({
      ...ENDPOINTS[1]!.base,
      model: 'd'.repeat(257 + ctx.random() * 5000),
    });
    return post(
      'huge',
      ctx,
      '/v1/fim/completions',
      body.replace('"max_tokens":20', `"max_tokens":1${'9'.repeat(400)}`),
    );
  }
  const messages = Array.from({ length: 600 }, () => ({ role: 'user', content: 'x' }));
  const body = JSON.stringify({ model: 'mistral-small-latest', messages });
  return post('huge', ctx, '/v1/chat/completions', body);
}

/** Nesting past the gateway's depth limit, balanced or not, in free-form and typed fields. */
export function deepNesting(ctx: CaseContext): FuzzCase {
  const depth = 65 + Math.floor(ctx.random() * 20_000);
  const chat = JSON.stringify(ENDPOINTS[0]!.base).slice(1, -1);
  const arrays = `${'['.repeat(depth)}${']'.repeat(depth)}`;
  const schema = `${'{"p":'.repeat(depth)}{}${'}'.repeat(depth)}`;
  const format = `{"type":"json_schema","json_schema":{"name":"x","schema":${schema}}}`;
  const body = pick(ctx.random, [
    arrays,
    '['.repeat(depth),
    `{${chat},"metadata":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`,
    `{${chat},"metadata":${'{"a":['.repeat(depth >> 1)}${']}'.repeat(depth >> 1)}}`,
    `{"model":"mistral-small-latest","messages":${arrays}}`,
    `{${chat},"response_format":${format}}`,
  ]);
  return post('deep-nesting', ctx, '/v1/chat/completions', body);
}

/** A valid body under a content type that is not JSON, or none at all. */
export function contentType(ctx: CaseContext): FuzzCase {
  const endpoint = pick(ctx.random, ENDPOINTS);
  const type = pick(ctx.random, [
    null,
    'text/plain',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=zz',
    'application/json; charset=latin1',
    'application/json; charset=utf-16',
    'application/jsonp',
    'text/json',
    'application/json, text/plain',
    'application/xml',
    '*/*',
  ]);
  const headers = jsonHeaders(ctx);
  if (type === null) delete headers['content-type'];
  else headers['content-type'] = type;
  const body = JSON.stringify(endpoint.base);
  return {
    category: 'content-type',
    transport: 'pool',
    method: 'POST',
    path: endpoint.path,
    headers,
    body,
  };
}
