import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  chatCompletionRequestToJSON,
  chatModerationRequestToJSON,
  classificationRequestToJSON,
  embeddingRequestToJSON,
  fimCompletionRequestToJSON,
} from '@mistralai/mistralai/models/components';
import {
  ConfigError,
  type GuardError,
  isGuardError,
  toSdkRequest,
  validateChatModerationRequest,
  validateChatRequest,
  validateEmbeddingRequest,
  validateFimRequest,
  validateModerationRequest,
} from '../../src/index.js';
import {
  chatModerationRequest,
  chatRequest,
  classificationRequest,
  embeddingRequest,
  fimRequest,
} from '../mistral/sample-requests.js';

const hello = () => ({
  model: 'mistral-small-latest',
  messages: [{ role: 'user', content: 'hello' }],
});

/** Every value of `expected` is in `actual` at the same path. */
function assertWithin(expected: unknown, actual: unknown, path: string): void {
  if (typeof expected !== 'object' || expected === null) {
    assert.deepEqual(actual, expected, `at ${path || 'the root'}`);
    return;
  }
  assert.equal(typeof actual, 'object', `at ${path}`);
  for (const [key, value] of Object.entries(expected)) {
    assertWithin(value, (actual as Record<string, unknown>)[key], `${path}.${key}`);
  }
}

function refusal(run: () => unknown): GuardError {
  try {
    run();
  } catch (error) {
    if (isGuardError(error)) return error;
    throw error;
  }
  assert.fail('no GuardError was thrown');
}

describe('validateChatRequest', () => {
  test('returns a checked copy with max_tokens set to the cap, the input untouched', () => {
    const input = hello();
    const body = validateChatRequest(input, { maxTokens: 512 });
    assert.equal(body.max_tokens, 512);
    assert.deepEqual(input, hello());
    assert.notEqual(body, input);
  });

  test('without a policy the default profile applies', () => {
    assert.equal(validateChatRequest(hello()).max_tokens, 8192);
  });

  test('every invalid field is listed with its path, never with its value', () => {
    const error = refusal(() =>
      validateChatRequest({
        ...hello(),
        temperature: 'sk-not-a-number',
        messages: [{ role: 'robot', content: 'x' }],
        surprise: true,
      }),
    );
    assert.equal(error.code, 'invalid_request');
    assert.equal(error.status, 400);
    assert.deepEqual(
      error.issues?.map((i) => i.path),
      ['temperature', 'messages[0].role', 'surprise'],
    );
    assert.doesNotMatch(JSON.stringify(error.issues), /sk-not-a-number/);
  });

  test('unknown fields pass under a policy that allows them', () => {
    const body = validateChatRequest({ ...hello(), surprise: true }, { allowUnknownFields: true });
    assert.equal((body as unknown as Record<string, unknown>).surprise, true);
  });

  test('the model policy and the max_tokens cap apply, clamping when the policy says so', () => {
    const policy = { models: ['mistral-small-*'], maxTokens: 100 };
    const other = refusal(() =>
      validateChatRequest({ ...hello(), model: 'codestral-latest' }, policy),
    );
    assert.equal(other.code, 'model_not_allowed');
    assert.equal(other.param, 'model');
    const over = refusal(() => validateChatRequest({ ...hello(), max_tokens: 101 }, policy));
    assert.equal(over.code, 'max_tokens_exceeded');
    const clamp = { ...policy, maxTokensAction: 'clamp' as const };
    assert.equal(validateChatRequest({ ...hello(), max_tokens: 101 }, clamp).max_tokens, 100);
  });

  test('message counts and sizes are capped', () => {
    const two = { ...hello(), messages: [...hello().messages, ...hello().messages] };
    assert.equal(refusal(() => validateChatRequest(two, { maxMessages: 1 })).param, 'messages');
    const long = refusal(() => validateChatRequest(hello(), { maxMessageChars: 3 }));
    assert.equal(long.param, 'messages[0]');
  });

  test('a body nested too deeply is refused at the first field too deep', () => {
    let deep: Record<string, unknown> = {};
    const root = deep;
    for (let i = 0; i < 100; i++) {
      deep.a = {};
      deep = deep.a as Record<string, unknown>;
    }
    const error = refusal(() => validateChatRequest({ ...hello(), metadata: root }));
    assert.equal(error.code, 'invalid_request');
    assert.match(error.param ?? '', /^metadata\.a\.a/);
  });

  test('a value that is not JSON data is refused', () => {
    const error = refusal(() => validateChatRequest({ ...hello(), metadata: { f: () => 1 } }));
    assert.equal(error.code, 'invalid_request');
  });

  test('an invalid policy is a configuration error naming its field', () => {
    assert.throws(
      () => validateChatRequest(hello(), { maxTokens: -1 }),
      (error: unknown) =>
        error instanceof ConfigError && error.problems[0]?.path === 'policy.maxTokens',
    );
  });
});

describe('the other validators', () => {
  test('each one checks its own endpoint schema', () => {
    assert.equal(validateFimRequest(fimRequest()).prompt, 'def');
    assert.equal(validateEmbeddingRequest(embeddingRequest()).input.length, 2);
    assert.equal(
      validateModerationRequest(classificationRequest()).model,
      'mistral-moderation-latest',
    );
    assert.equal(validateChatModerationRequest(chatModerationRequest()).input.length, 2);
    assert.equal(refusal(() => validateFimRequest(hello())).param, 'prompt');
    assert.equal(refusal(() => validateEmbeddingRequest({ model: 'm' })).param, 'input');
  });
});

describe('toSdkRequest', () => {
  test('the SDK sends back every field of the body it was made from', () => {
    const cases: Array<[(request: never) => string, unknown, Record<string, unknown>]> = [
      [
        chatCompletionRequestToJSON,
        toSdkRequest('chat.complete', validateChatRequest(chatRequest())),
        chatRequest(),
      ],
      [
        fimCompletionRequestToJSON,
        toSdkRequest('fim.complete', validateFimRequest(fimRequest())),
        fimRequest(),
      ],
      [
        embeddingRequestToJSON,
        toSdkRequest('embeddings.create', validateEmbeddingRequest(embeddingRequest())),
        embeddingRequest(),
      ],
      [
        classificationRequestToJSON,
        toSdkRequest('moderations.create', validateModerationRequest(classificationRequest())),
        classificationRequest(),
      ],
      [
        chatModerationRequestToJSON,
        toSdkRequest(
          'chat.moderations.create',
          validateChatModerationRequest(chatModerationRequest()),
        ),
        chatModerationRequest(),
      ],
    ];
    for (const [serialise, request, wire] of cases) {
      // A field the conversion misnamed is dropped by the SDK; defaults it adds are fine.
      assertWithin(wire, JSON.parse(serialise(request as never)), '');
    }
  });

  test('free-form objects keep their keys as written', () => {
    const body = validateChatRequest({ ...hello(), metadata: { team_name: 'search' } });
    const request = toSdkRequest('chat.complete', body);
    assert.deepEqual(request.metadata, { team_name: 'search' });
    assert.equal(request.maxTokens, 8192);
  });
});
