import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  countMessages,
  ENDPOINTS,
  type EndpointSpec,
  estimatePromptChars,
  isStream,
  maxTokensOf,
  messageSizes,
  modelOf,
  setMaxTokens,
  textFields,
} from '../../src/mistral/endpoints.js';
import { getSchemas, type SchemaName } from '../../src/mistral/schemas.js';
import { SAMPLES } from './sample-requests.js';

function endpoint(schemaName: SchemaName): EndpointSpec {
  return ENDPOINTS.find((e) => e.schemaName === schemaName)!;
}

function pathsOf(schemaName: SchemaName): string[] {
  return textFields(endpoint(schemaName), SAMPLES[schemaName]()).map((f) => f.path);
}

test('the table lists the nine inspected endpoints with their schemas', () => {
  assert.deepEqual(
    ENDPOINTS.map((e) => [e.path, e.action, e.schemaName]),
    [
      ['/v1/chat/completions', 'chat.complete', 'ChatCompletionRequest'],
      ['/v1/fim/completions', 'fim.complete', 'FIMCompletionRequest'],
      ['/v1/agents/completions', 'agents.complete', 'AgentsCompletionRequest'],
      ['/v1/embeddings', 'embeddings.create', 'EmbeddingRequest'],
      ['/v1/moderations', 'moderations.create', 'ClassificationRequest'],
      ['/v1/chat/moderations', 'chat.moderations.create', 'ChatModerationRequest'],
      ['/v1/classifications', 'classifications.create', 'ClassificationRequest'],
      ['/v1/chat/classifications', 'chat.classifications.create', 'ChatClassificationRequest'],
      ['/v1/ocr', 'ocr.process', 'OCRRequest'],
    ],
  );
  const streamable = ENDPOINTS.filter((e) => e.streamable).map((e) => e.action);
  assert.deepEqual(streamable, ['chat.complete', 'fim.complete', 'agents.complete']);
  assert.ok(Object.isFrozen(ENDPOINTS) && Object.isFrozen(ENDPOINTS[0]));
});

test('modelOf reads the model and gives undefined for agents completions', () => {
  assert.equal(modelOf(SAMPLES.ChatCompletionRequest()), 'mistral-large-latest');
  assert.equal(modelOf(SAMPLES.AgentsCompletionRequest()), undefined);
  assert.equal(modelOf({ model: null }), undefined);
});

test('max_tokens can be read and replaced in place', () => {
  const body = SAMPLES.ChatCompletionRequest();
  assert.equal(maxTokensOf(body), 512);
  setMaxTokens(body, 100);
  assert.equal(body.max_tokens, 100);
  assert.equal(maxTokensOf({ max_tokens: null }), null);
  assert.equal(maxTokensOf({}), undefined);
});

test('only a literal true asks for a stream', () => {
  assert.equal(isStream({ stream: true }), true);
  assert.equal(isStream({ stream: 'true' }), false);
  assert.equal(isStream({}), false);
});

test('messages are counted across every conversation of a request', () => {
  assert.equal(countMessages(SAMPLES.ChatCompletionRequest()), 6);
  assert.equal(countMessages(SAMPLES.ChatModerationRequest()), 3);
  assert.equal(countMessages(SAMPLES.ChatClassificationRequest()), 1);
  assert.equal(countMessages({ input: [{ messages: [{}, {}] }, { messages: [{}] }] }), 3);
  assert.equal(countMessages({ input: [{ role: 'user', content: 'x' }] }), 1);
  assert.equal(countMessages(SAMPLES.EmbeddingRequest()), 0);
});

test('chat text fields cover contents, chunks, thinking, tool calls, prediction, tools, schemas and stops', () => {
  assert.deepEqual(pathsOf('ChatCompletionRequest'), [
    'messages[0].content',
    'messages[1].content[0].text',
    'messages[1].content[1].image_url.url',
    'messages[2].tool_calls[0].function.name',
    'messages[2].tool_calls[0].function.arguments',
    'messages[3].content',
    'messages[4].content[0].thinking[0].text',
    'messages[4].content[1].text',
    'messages[5].content',
    'prediction.content',
    'tools[0].function.name',
    'tools[0].function.description',
    'tools[0].function.parameters',
    'response_format.json_schema.name',
    'response_format.json_schema.schema',
    'stop[0]',
  ]);
});

test('every endpoint exposes its user texts', () => {
  assert.deepEqual(pathsOf('FIMCompletionRequest'), ['prompt', 'suffix']);
  assert.deepEqual(pathsOf('AgentsCompletionRequest'), [
    'messages[0].content',
    'messages[1].tool_calls[0].function.name',
    'messages[1].tool_calls[0].function.arguments',
    'messages[2].content[0].text',
  ]);
  assert.deepEqual(pathsOf('EmbeddingRequest'), ['input[0]', 'input[1]']);
  assert.deepEqual(pathsOf('ClassificationRequest'), ['input']);
  assert.deepEqual(pathsOf('ChatModerationRequest'), [
    'input[0][0].content',
    'input[1][0].content',
    'input[1][1].content',
  ]);
  assert.deepEqual(pathsOf('ChatClassificationRequest'), ['input.messages[0].content[0].text']);
  assert.deepEqual(pathsOf('OCRRequest'), ['document_annotation_prompt']);
});

test('text fields read and replace every text in place on each endpoint', () => {
  for (const spec of ENDPOINTS) {
    const body = SAMPLES[spec.schemaName]();
    const fields = textFields(spec, body);
    assert.ok(fields.length > 0, spec.path);
    // A JSON-valued field (a schema, parameters) gets JSON back, as a redacted JSON text would.
    const replacement = (f: { path: string; get(): string }) =>
      f.get().startsWith('{') ? `{"redacted":"${f.path}"}` : `[REDACTED:${f.path}]`;
    const expected = fields.map(replacement);
    fields.forEach((field, i) => {
      field.set(expected[i]!);
    });
    const again = textFields(spec, body);
    assert.deepEqual(
      again.map((f) => f.get()),
      expected,
      spec.path,
    );
    const result = getSchemas(false)[spec.schemaName].safeParse(body);
    assert.ok(result.success, `${spec.path} stays valid after redaction`);
  }
});

test('object tool arguments are read as JSON and stay objects when set to JSON', () => {
  const body = SAMPLES.AgentsCompletionRequest();
  const field = textFields(endpoint('AgentsCompletionRequest'), body).find((f) =>
    f.path.endsWith('.function.arguments'),
  )!;
  assert.equal(field.get(), '{"q":"painters"}');
  field.set('{"q":"[REDACTED]"}');
  const call = (body.messages as { tool_calls?: { function: { arguments: unknown } }[] }[])[1]!;
  assert.deepEqual(call.tool_calls![0]!.function.arguments, { q: '[REDACTED]' });
  field.set('not json');
  assert.equal(call.tool_calls![0]!.function.arguments, 'not json');
});

test('the prompt estimate is the sum of text lengths', () => {
  const spec = endpoint('EmbeddingRequest');
  const body = SAMPLES.EmbeddingRequest();
  assert.equal(estimatePromptChars(spec, body), 'Embed this sentence.As well as this one.'.length);
  assert.equal(
    estimatePromptChars(endpoint('FIMCompletionRequest'), SAMPLES.FIMCompletionRequest()),
    13,
  );
});

test('helpers tolerate shapes the schema would refuse', () => {
  const body = { messages: [null, 5, { content: [null, { type: 'image_url' }] }], input: 3 };
  for (const spec of ENDPOINTS) assert.doesNotThrow(() => textFields(spec, body));
  assert.equal(countMessages({ input: 'x' }), 0);
});

test('message sizes sum every text of a message, chunks and tool call arguments included', () => {
  const body = {
    messages: [
      { role: 'system', content: 'abc' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'x'.repeat(60) },
          { type: 'image_url', image_url: 'https://example.com/a.png' },
          { type: 'text', text: 'y'.repeat(60) },
        ],
      },
      {
        role: 'assistant',
        content: [{ type: 'thinking', thinking: [{ type: 'text', text: 'hm' }] }, { text: 'ok' }],
        tool_calls: [
          { function: { name: 'a', arguments: '{"q":1}' } },
          { function: { name: 'b', arguments: { q: 'zz' } } },
        ],
      },
      { role: 'user', content: null },
    ],
    prediction: { type: 'content', content: 'pred' },
  };
  assert.deepEqual(messageSizes(endpoint('ChatCompletionRequest'), body), [
    { path: 'messages[0]', chars: 3 },
    { path: 'messages[1]', chars: 120 },
    { path: 'messages[2]', chars: 2 + 2 + '{"q":1}'.length + '{"q":"zz"}'.length },
    { path: 'messages[3]', chars: 0 },
    { path: 'prediction.content', chars: 4 },
  ]);
});

test('message sizes cover every conversation and each top-level input', () => {
  const sizes = (name: SchemaName) => messageSizes(endpoint(name), SAMPLES[name]());
  assert.deepEqual(
    sizes('FIMCompletionRequest').map((s) => s.path),
    ['prompt', 'suffix'],
  );
  assert.deepEqual(sizes('EmbeddingRequest'), [
    { path: 'input[0]', chars: 'Embed this sentence.'.length },
    { path: 'input[1]', chars: 'As well as this one.'.length },
  ]);
  assert.deepEqual(
    sizes('ChatModerationRequest').map((s) => s.path),
    ['input[0][0]', 'input[1][0]', 'input[1][1]'],
  );
  assert.deepEqual(
    sizes('ChatClassificationRequest').map((s) => s.path),
    ['input.messages[0]'],
  );
  const batched = { input: [{ messages: [{ content: 'ab' }] }, { messages: [{ content: 'c' }] }] };
  assert.deepEqual(messageSizes(endpoint('ChatClassificationRequest'), batched), [
    { path: 'input[0].messages[0]', chars: 2 },
    { path: 'input[1].messages[0]', chars: 1 },
  ]);
  assert.deepEqual(
    sizes('OCRRequest').map((s) => s.path),
    ['document_annotation_prompt'],
  );
  for (const spec of ENDPOINTS) {
    const body = SAMPLES[spec.schemaName]();
    // The estimate also counts what the model reads beside the messages (tools, schemas).
    const total = messageSizes(spec, body).reduce((sum, s) => sum + s.chars, 0);
    assert.ok(total <= estimatePromptChars(spec, body), spec.path);
  }
});

test('message sizes tolerate shapes the schema would refuse', () => {
  const body = { messages: [null, 5, { content: [null, { type: 'text', text: 7 }] }], input: 3 };
  for (const spec of ENDPOINTS) assert.doesNotThrow(() => messageSizes(spec, body));
  assert.deepEqual(
    messageSizes(endpoint('ChatCompletionRequest'), body).map((s) => s.chars),
    [0, 0, 0],
  );
});
