import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { formatIssues, formatPath, MAX_ISSUES } from '../../src/mistral/issues.js';
import { getSchemas } from '../../src/mistral/schemas.js';

const SECRET = 'sk-live-0123456789abcdefSECRET';

function failure(schema: z.ZodType, value: unknown): z.ZodError {
  const result = schema.safeParse(value);
  assert.equal(result.success, false);
  return result.error!;
}

test('paths are written with dots for names and brackets for indexes', () => {
  assert.equal(formatPath(['messages', 2, 'content', 0, 'text']), 'messages[2].content[0].text');
  assert.equal(formatPath([0, 'a']), '[0].a');
  assert.equal(formatPath([]), '');
});

test('a key that is not an identifier is quoted so it cannot forge a path', () => {
  assert.equal(formatPath(['tools', 0, 'a.b[1]']), 'tools[0]["a.b[1]"]');
  const long = formatPath(['x'.repeat(500)]);
  assert.ok(long.length < 80);
});

test('messages never echo the rejected value', () => {
  const chat = getSchemas(false).ChatCompletionRequest;
  const bodies = [
    { model: 'm', messages: [{ role: 'user', content: 5 }], temperature: SECRET },
    { model: 'm', messages: [{ role: SECRET, content: 'x' }] },
    { model: 'm', messages: [], tool_choice: SECRET, service_tier: SECRET },
    { model: 'm', messages: [], response_format: { type: SECRET } },
    { model: SECRET.repeat(20), messages: [] },
  ];
  for (const body of bodies) {
    const issues = formatIssues(failure(chat, body));
    assert.ok(issues.length > 0);
    assert.ok(!JSON.stringify(issues).includes('sk-live'), JSON.stringify(issues));
  }
});

test('each unknown key becomes its own issue', () => {
  const schema = z.strictObject({ a: z.string() });
  assert.deepEqual(formatIssues(failure(schema, { a: 'x', b: 1, c: 2 })), [
    { path: 'b', message: 'Unknown field.' },
    { path: 'c', message: 'Unknown field.' },
  ]);
});

test('a union is reported at the branch that failed below its root', () => {
  const schema = z.object({
    content: z.union([z.string(), z.array(z.object({ text: z.string() }))]),
  });
  assert.deepEqual(formatIssues(failure(schema, { content: [{ text: 1 }] })), [
    { path: 'content[0].text', message: 'Expected string, received number.' },
  ]);
  assert.deepEqual(formatIssues(failure(schema, { content: 3 })), [
    { path: 'content', message: 'Expected string or array.' },
  ]);
});

test('duplicate issues are reported once', () => {
  const schema = z.object({ a: z.string() });
  const error = failure(schema, {});
  const doubled = new z.ZodError([...error.issues, ...error.issues]);
  assert.equal(formatIssues(doubled).length, 1);
});

test('at most MAX_ISSUES issues are returned', () => {
  const schema = z.array(z.string());
  const issues = formatIssues(
    failure(
      schema,
      Array.from({ length: 500 }, (_, i) => i),
    ),
  );
  assert.equal(issues.length, MAX_ISSUES);
  assert.equal(issues[0]!.path, '[0]');
});

test('bounds are stated with their unit', () => {
  const schema = z.object({
    s: z.string().max(3),
    a: z.array(z.number()).min(2),
    n: z.number().gt(0),
  });
  assert.deepEqual(formatIssues(failure(schema, { s: 'abcd', a: [], n: 0 })), [
    { path: 's', message: 'Too long: at most 3 characters.' },
    { path: 'a', message: 'Too short: at least 2 items.' },
    { path: 'n', message: 'Too small: at least 0 (exclusive).' },
  ]);
});

test('an unknown field named like a key is not repeated back', () => {
  const secretish = 'bogus_Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z';
  const result = getSchemas(false).ChatCompletionRequest.safeParse({
    model: 'm',
    messages: [{ role: 'user', content: 'x' }],
    [secretish]: 1,
    bogus: 2,
  });
  assert.equal(result.success, false);
  const issues = formatIssues(result.error!);
  assert.ok(!JSON.stringify(issues).includes('Ab3dEf6h'));
  assert.ok(issues.some((i) => i.path === 'bogus'));
});
