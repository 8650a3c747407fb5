import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkDepth, MAX_JSON_DEPTH } from '../../src/mistral/depth.js';

/** JSON text of `levels` objects nested under `key`, built as text so nothing here recurses. */
function nestedText(key: string, levels: number): string {
  return `${`{"${key}":`.repeat(levels - 1)}{}${'}'.repeat(levels - 1)}`;
}

test('the body itself is level 1 and the first object past the limit is named', () => {
  assert.equal(checkDepth({ a: { b: {} } }, 3), null);
  assert.equal(checkDepth({ a: { b: {} } }, 2), 'a.b');
  assert.equal(checkDepth([[[1]]], 2), '[0][0]');
  assert.equal(checkDepth({ a: [{ 'odd key': { x: 1 } }] }, 3), 'a[0]["odd key"]');
  for (const scalar of [null, 0, 'text', true, undefined])
    assert.equal(checkDepth(scalar, 1), null);
  assert.throws(() => checkDepth({}, 0), RangeError);
});

test('the reported path is the first too deep in document order', () => {
  const body = { a: { ok: 1 }, b: { deep: { x: {} } }, c: { deep: { y: {} } } };
  assert.equal(checkDepth(body, 3), 'b.deep.x');
});

test('a schema nested thousands of levels deep is found without overflowing the stack', () => {
  const schema = nestedText('properties', 100_000);
  const body = JSON.parse(
    `{"model":"m","response_format":{"type":"json_schema","json_schema":{"schema":${schema}}}}`,
  ) as unknown;
  const path = checkDepth(body, MAX_JSON_DEPTH) ?? '';
  assert.ok(path.startsWith('response_format.json_schema.schema.properties.properties'), path);
  assert.equal(path.split('.').length, MAX_JSON_DEPTH);
  const tools = JSON.parse(
    `{"tools":[{"function":{"parameters":[${'['.repeat(5000)}${']'.repeat(5000)}]}}]}`,
  );
  assert.match(checkDepth(tools, MAX_JSON_DEPTH)!, /^tools\[0\]\.function\.parameters\[0\]\[0\]/);
});

test('a body at the default limit passes, and one level more does not', () => {
  const atLimit = JSON.parse(nestedText('k', MAX_JSON_DEPTH)) as unknown;
  assert.equal(checkDepth(atLimit), null);
  const beyond = JSON.parse(nestedText('k', MAX_JSON_DEPTH + 1)) as unknown;
  assert.equal(checkDepth(beyond), Array(MAX_JSON_DEPTH).fill('k').join('.'));
});

test('the check is linear: a wide body of 600,000 objects is quick', () => {
  const wide = {
    messages: Array.from({ length: 200_000 }, () => ({ role: 'user', content: [{}] })),
  };
  const started = performance.now();
  assert.equal(checkDepth(wide), null);
  assert.ok(performance.now() - started < 2000);
});
