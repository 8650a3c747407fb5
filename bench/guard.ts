// Throughput of the content guard: scanText on mixed 4 KB chat prompts (occasional personal
// data or a key) and on 1 MB documents, plus redactText, the stream redactor and the sanitiser.
// Figures are the best of several rounds, since a shared machine adds noise only upward.
// Run: node --import tsx bench/guard.ts
import { createStreamRedactor, redactText, sanitizeOutput, scanText } from '../src/guard/index.js';

let seed = 42;
function rand(): number {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed / 0x7fffffff;
}
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;

const SENTENCES = [
  'Can you summarise the attached meeting notes in five bullet points?',
  'The customer asked why their invoice total changed between March and April.',
  'Rewrite this paragraph so it sounds friendlier, but keep it under 120 words.',
  'We deploy the service with 3 replicas and a 30 second readiness timeout.',
  'Explain the difference between a mutex and a semaphore with an example in Go.',
  'Le client souhaite être rappelé demain matin au sujet de sa commande.',
  'Here is the stack trace from production, line 42 throws a null pointer.',
  'Our Q3 revenue grew by 12.5% compared to last year, mostly in Europe.',
  'Translate the following text into German and keep the formatting.',
  'The function should return an empty list when the input is null.',
  'Use the mistral-small-latest model with temperature 0.3 for this task.',
  '```ts\nconst total = items.reduce((sum, item) => sum + item.price, 0);\n```',
];
const PII = [
  ' Contact me at jane.roe@example.com if needed.',
  ' My phone is +33 6 12 34 56 78.',
  ' The card on file is 4111 1111 1111 1111.',
  ' IBAN FR76 3000 6000 0112 3456 7890 189 for the refund.',
  ' MISTRAL_API_KEY=FAKEq9Zt3LmN7xYvB2cD8eF4gH6jK1pR',
];

function prompt(size: number): string {
  let s = '';
  while (s.length < size) {
    s += `${pick(SENTENCES)}${rand() < 0.15 ? '\n\n' : ' '}`;
    if (rand() < 0.01) s += pick(PII);
  }
  // JSON round trip: gateway bodies arrive as flat strings from JSON.parse.
  return JSON.parse(JSON.stringify(s.slice(0, size))) as string;
}

function measure(
  name: string,
  inputs: string[],
  work: (text: string) => unknown,
  rounds = 7,
): number {
  const bytes = inputs.reduce((n, t) => n + Buffer.byteLength(t), 0);
  for (const t of inputs) work(t);
  let best = 0;
  for (let r = 0; r < rounds; r++) {
    const started = performance.now();
    for (const t of inputs) work(t);
    const seconds = (performance.now() - started) / 1000;
    best = Math.max(best, bytes / 1e6 / seconds);
  }
  process.stdout.write(`${name.padEnd(40)} ${best.toFixed(1).padStart(8)} MB/s\n`);
  return best;
}

const prompts = Array.from({ length: 512 }, () => prompt(4096));
const documents = Array.from({ length: 4 }, () => prompt(1 << 20));
const withFindings = prompts.filter((p) => scanText(p).length > 0).length;
process.stdout.write(
  `${prompts.length} prompts of 4 KB (${withFindings} with findings), ${documents.length} documents of 1 MB\n`,
);

const mixed = measure('scanText, mixed 4 KB prompts', prompts, (t) => scanText(t));
measure('scanText, 1 MB documents', documents, (t) => scanText(t), 3);
measure('redactText, mixed 4 KB prompts', prompts, (t) => redactText(t));
measure('stream redactor, 4 KB prompts in 64 B pieces', prompts.slice(0, 128), (t) => {
  const r = createStreamRedactor();
  for (let i = 0; i < t.length; i += 64) r.push(t.slice(i, i + 64));
  r.end();
});
// Token-sized pieces: a scan per push would cost the held text and left context each time.
measure('stream redactor, 4 KB prompts in 4 B pieces', prompts.slice(0, 32), (t) => {
  const r = createStreamRedactor();
  for (let i = 0; i < t.length; i += 4) r.push(t.slice(i, i + 4));
  r.end();
});
measure('sanitizeOutput, 4 KB answers', prompts, (t) =>
  sanitizeOutput(t, { allowedLinkHosts: ['docs.mistral.ai'], stripHtml: true }),
);
process.stdout.write(`target: 100 MB/s on mixed prompts: ${mixed >= 100 ? 'met' : 'NOT met'}\n`);
