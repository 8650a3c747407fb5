/**
 * A nesting limit for parsed request bodies. Free-form fields (a JSON schema in
 * `response_format`, tool `parameters`, tool call arguments) may nest without bound, and every
 * recursive walk over them afterwards (zod, `JSON.stringify`, the guard) would overflow the
 * stack on a few thousand levels. The check runs right after `JSON.parse`, walks the value with
 * an explicit stack, and visits each node once.
 */
import { formatPath } from './issues.js';

/**
 * The deepest nesting of objects and arrays a request body may have, the body itself being level
 * 1. Real requests stay far below it (a chat body with a tool schema of ten nested objects is
 * about 15 levels), and recursive code handles it with ample stack to spare.
 */
export const MAX_JSON_DEPTH = 64;

interface Frame {
  value: object;
  depth: number;
  parent: Frame | null;
  key: string | number;
}

/**
 * The path of the first object or array (in document order) nested deeper than `max` levels,
 * or null when none is. The body itself is level 1, so `{"a": {"b": {}}}` has three levels and
 * with `max` 2 the answer is `a.b`. Iterative and linear in the size of the value.
 *
 * @example
 * checkDepth({ a: { b: {} } }, 2); // 'a.b'
 * checkDepth({ tools: [{ type: 'function' }] }); // null
 */
export function checkDepth(value: unknown, max: number = MAX_JSON_DEPTH): string | null {
  if (!(max >= 1)) throw new RangeError('max must be at least 1');
  if (!isContainer(value)) return null;
  const stack: Frame[] = [{ value, depth: 1, parent: null, key: '' }];
  while (stack.length > 0) {
    const frame = stack.pop()!;
    if (frame.depth > max) return pathOf(frame);
    // Children are pushed last first, so they are visited in document order.
    if (Array.isArray(frame.value)) {
      for (let i = frame.value.length - 1; i >= 0; i--) push(stack, frame, i, frame.value[i]);
    } else {
      const record = frame.value as Record<string, unknown>;
      const keys = Object.keys(record);
      for (let i = keys.length - 1; i >= 0; i--) push(stack, frame, keys[i]!, record[keys[i]!]);
    }
  }
  return null;
}

function push(stack: Frame[], parent: Frame, key: string | number, value: unknown): void {
  if (isContainer(value)) stack.push({ value, depth: parent.depth + 1, parent, key });
}

function isContainer(value: unknown): value is object {
  return typeof value === 'object' && value !== null;
}

function pathOf(frame: Frame): string {
  const keys: Array<string | number> = [];
  for (let at: Frame | null = frame; at?.parent; at = at.parent) keys.push(at.key);
  return formatPath(keys.reverse());
}
