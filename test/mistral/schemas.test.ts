import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ENDPOINTS } from '../../src/mistral/endpoints.js';
import { formatIssues } from '../../src/mistral/issues.js';
import { buildSchemas, getSchemas, type SchemaName } from '../../src/mistral/schemas.js';
import { chatRequest, fimRequest, ocrRequest, SAMPLES } from './sample-requests.js';

const strict = getSchemas(false);
const relaxed = getSchemas(true);

function issuesOf(name: SchemaName, body: unknown, allowUnknown = false) {
  const result = getSchemas(allowUnknown)[name].safeParse(body);
  assert.equal(result.success, false, 'expected the body to be refused');
  return formatIssues(result.error!);
}

function pathsOf(name: SchemaName, body: unknown, allowUnknown = false): string[] {
  return issuesOf(name, body, allowUnknown).map((i) => i.path);
}

function chatWith(extra: Record<string, unknown>) {
  return { ...chatRequest(), ...extra };
}

test('every inspected endpoint accepts a realistic valid request', () => {
  for (const endpoint of ENDPOINTS) {
    const body = SAMPLES[endpoint.schemaName]();
    const result = strict[endpoint.schemaName].safeParse(body);
    assert.ok(result.success, `${endpoint.path}: ${JSON.stringify(result.error?.issues)}`);
  }
});

test('the prebuilt schema sets are reused, not rebuilt', () => {
  assert.equal(getSchemas(false), getSchemas(false));
  assert.equal(getSchemas(true), getSchemas(true));
  assert.notEqual(getSchemas(true), getSchemas(false));
  assert.ok(buildSchemas({ allowUnknownFields: false }).ChatCompletionRequest);
});

test('minimal requests from the spec examples pass', () => {
  const chat = {
    model: 'mistral-large-latest',
    messages: [{ role: 'user', content: 'Who is the best French painter?' }],
  };
  assert.ok(strict.ChatCompletionRequest.safeParse(chat).success);
  assert.ok(
    strict.FIMCompletionRequest.safeParse({ model: 'codestral-latest', prompt: 'def' }).success,
  );
  const agents = { agent_id: 'ag_1', messages: chat.messages };
  assert.ok(strict.AgentsCompletionRequest.safeParse(agents).success);
  const ocr = { model: null, document: { document_url: 'https://example.com/a.pdf' } };
  assert.ok(strict.OCRRequest.safeParse(ocr).success, 'OCR document type is defaulted');
});

test('an unknown top-level field is refused at its own path', () => {
  const issues = issuesOf(
    'ChatCompletionRequest',
    chatWith({ stream_options: { include_usage: true } }),
  );
  assert.deepEqual(issues, [{ path: 'stream_options', message: 'Unknown field.' }]);
});

test('unknown fields inside messages, chunks and tools are refused at their paths', () => {
  const body = chatRequest();
  const messages = body.messages as Record<string, unknown>[];
  messages[0]!.name = 'bob';
  (messages[1]!.content as Record<string, unknown>[])[0]!.cache_control = {};
  (body.tools as Record<string, unknown>[])[0]!.extra = 1;
  body.max_completion_tokens = 10;
  assert.deepEqual(pathsOf('ChatCompletionRequest', body).sort(), [
    'max_completion_tokens',
    'messages[0].name',
    'messages[1].content[0].cache_control',
    'tools[0].extra',
  ]);
});

test('the relaxed schema set keeps unknown fields at every level', () => {
  const body = chatRequest();
  const messages = body.messages as Record<string, unknown>[];
  messages[0]!.name = 'bob';
  body.stream_options = { include_usage: true };
  (body.tools as Record<string, unknown>[])[0]!.extra = 1;
  assert.ok(relaxed.ChatCompletionRequest.safeParse(body).success);
  assert.ok(relaxed.FIMCompletionRequest.safeParse({ ...fimRequest(), echo: true }).success);
});

test('relaxed schemas still refuse wrong types', () => {
  assert.deepEqual(pathsOf('ChatCompletionRequest', chatWith({ max_tokens: 'ten' }), true), [
    'max_tokens',
  ]);
});

test('wrong types are reported at their precise paths', () => {
  const body = chatRequest();
  const messages = body.messages as Record<string, unknown>[];
  (messages[1]!.content as Record<string, unknown>[])[0]!.text = 5;
  body.temperature = 2;
  body.tools = [{ type: 'function', function: { name: 'f' } }];
  const issues = issuesOf('ChatCompletionRequest', body);
  assert.deepEqual(
    issues.map((i) => i.path),
    ['temperature', 'messages[1].content[0].text', 'tools[0].function.parameters'],
  );
  assert.equal(issues[0]!.message, 'Too large: at most 1.5.');
  assert.equal(issues[1]!.message, 'Expected string, received number.');
});

test('a missing required field is reported as required', () => {
  const { model: _model, ...body } = chatRequest();
  assert.deepEqual(issuesOf('ChatCompletionRequest', body), [
    { path: 'model', message: 'Required: expected string.' },
  ]);
  assert.deepEqual(pathsOf('AgentsCompletionRequest', { messages: [] }), ['agent_id']);
});

test('numeric bounds follow the spec', () => {
  const bad = [
    ['max_tokens', -1],
    ['max_tokens', 1.5],
    ['n', 0],
    ['top_p', 0],
    ['presence_penalty', 2.5],
    ['frequency_penalty', -3],
    ['random_seed', -1],
  ] as const;
  for (const [field, value] of bad) {
    assert.deepEqual(pathsOf('ChatCompletionRequest', chatWith({ [field]: value })), [field]);
  }
  for (const field of ['temperature', 'top_p', 'max_tokens', 'n', 'stop', 'random_seed']) {
    assert.ok(strict.ChatCompletionRequest.safeParse(chatWith({ [field]: null })).success, field);
  }
  assert.ok(strict.ChatCompletionRequest.safeParse(chatWith({ stop: 'END' })).success);
  assert.deepEqual(pathsOf('ChatCompletionRequest', chatWith({ stop: [1] })), ['stop[0]']);
});

test('an unknown or missing role names the role field and the allowed roles', () => {
  const body = chatRequest();
  (body.messages as Record<string, unknown>[])[2] = { role: 'developer', content: 'x' };
  const issues = issuesOf('ChatCompletionRequest', body);
  assert.deepEqual(issues, [
    {
      path: 'messages[2].role',
      message: 'Missing or unknown value: expected one of "system", "user", "assistant", "tool".',
    },
  ]);
  const missing = chatWith({ messages: [{ content: 'x' }] });
  assert.deepEqual(pathsOf('ChatCompletionRequest', missing), ['messages[0].role']);
});

test('a role-specific field is checked against that role only', () => {
  const body = chatWith({ messages: [{ role: 'user', content: 'x', tool_calls: [] }] });
  assert.deepEqual(pathsOf('ChatCompletionRequest', body), ['messages[0].tool_calls']);
  const system = chatWith({ messages: [{ role: 'system', content: null }] });
  assert.deepEqual(pathsOf('ChatCompletionRequest', system), ['messages[0].content']);
});

test('an unknown chunk type names the chunk type field', () => {
  const body = chatWith({ messages: [{ role: 'user', content: [{ type: 'video', url: 'x' }] }] });
  assert.deepEqual(pathsOf('ChatCompletionRequest', body), ['messages[0].content[0].type']);
});

test('agents completions refuse chat-only fields', () => {
  const body = { agent_id: 'ag_1', messages: [], temperature: 0.2, model: 'm' };
  assert.deepEqual(pathsOf('AgentsCompletionRequest', body).sort(), ['model', 'temperature']);
});

test('enums and tool choice follow the spec', () => {
  assert.deepEqual(pathsOf('ChatCompletionRequest', chatWith({ tool_choice: 'always' })), [
    'tool_choice',
  ]);
  for (const effort of ['none', 'minimal', 'low', 'medium', 'high', 'xhigh']) {
    assert.ok(
      strict.ChatCompletionRequest.safeParse(chatWith({ reasoning_effort: effort })).success,
    );
  }
  assert.deepEqual(pathsOf('ChatCompletionRequest', chatWith({ prompt_mode: 'fast' })), [
    'prompt_mode',
  ]);
  assert.deepEqual(pathsOf('EmbeddingRequest', { model: 'e', input: 'x', output_dimension: 0 }), [
    'output_dimension',
  ]);
  assert.deepEqual(pathsOf('OCRRequest', { ...ocrRequest(), table_format: 'csv' }), [
    'table_format',
  ]);
});

test('guardrail configs stay open as the spec leaves them', () => {
  const guardrails = [{ moderation_llm_v1: { action: 'block', future_knob: 1 }, extra: true }];
  assert.ok(strict.ChatCompletionRequest.safeParse(chatWith({ guardrails })).success);
});

test('an oversized model id and too many tools are refused', () => {
  assert.deepEqual(pathsOf('ChatCompletionRequest', chatWith({ model: 'm'.repeat(300) })), [
    'model',
  ]);
  const tools = Array.from({ length: 129 }, () => ({ type: 'web_search' }));
  assert.deepEqual(pathsOf('ChatCompletionRequest', chatWith({ tools })), ['tools']);
});

test('chat moderations and classifications take one conversation or a batch', () => {
  const one = { model: 'm', input: [{ role: 'user', content: 'x' }] };
  assert.ok(strict.ChatModerationRequest.safeParse(one).success);
  const many = {
    model: 'm',
    input: [{ messages: [] }, { messages: [{ role: 'user', content: 'y' }] }],
  };
  assert.ok(strict.ChatClassificationRequest.safeParse(many).success);
  assert.ok(strict.ClassificationRequest.safeParse({ model: 'm', input: ['a', 'b'] }).success);
  assert.ok(!strict.ClassificationRequest.safeParse({ model: 'm', input: [1] }).success);
});

test('a request that is not an object is refused at the root', () => {
  assert.deepEqual(issuesOf('EmbeddingRequest', ['x']), [
    { path: '', message: 'Expected object, received array.' },
  ]);
});
