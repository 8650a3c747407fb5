// Model cards for `GET /v1/models`, shaped like the spec's BaseModelCard. Cards and their JSON
// are built once per server, so listing models costs a buffer write per request.

/** The models a loopback server lists when none are given: one per endpoint family. */
export const DEFAULT_MODELS: readonly string[] = [
  'mistral-large-latest',
  'mistral-medium-latest',
  'mistral-small-latest',
  'ministral-8b-latest',
  'codestral-latest',
  'mistral-embed',
  'codestral-embed',
  'mistral-moderation-latest',
  'mistral-ocr-latest',
];

type Capability =
  | 'completion_chat'
  | 'function_calling'
  | 'reasoning'
  | 'completion_fim'
  | 'fine_tuning'
  | 'vision'
  | 'ocr'
  | 'classification'
  | 'moderation'
  | 'audio'
  | 'audio_transcription'
  | 'audio_transcription_realtime'
  | 'audio_speech'
  | 'unified_resources';

const ALL_CAPABILITIES: readonly Capability[] = [
  'completion_chat',
  'function_calling',
  'reasoning',
  'completion_fim',
  'fine_tuning',
  'vision',
  'ocr',
  'classification',
  'moderation',
  'audio',
  'audio_transcription',
  'audio_transcription_realtime',
  'audio_speech',
  'unified_resources',
];

interface Known {
  aliases: string[];
  context: number;
  caps: Capability[];
}

const GENERALIST: Capability[] = ['completion_chat', 'function_calling', 'vision'];

// Dated IDs from the docs registry, so alias lookups behave like the live list.
const KNOWN: Record<string, Known> = {
  'mistral-large-latest': { aliases: ['mistral-large-2512'], context: 262144, caps: GENERALIST },
  'mistral-medium-latest': {
    aliases: ['mistral-medium-3-5', 'mistral-medium-3'],
    context: 262144,
    caps: GENERALIST,
  },
  'mistral-small-latest': { aliases: ['mistral-small-2603'], context: 262144, caps: GENERALIST },
  'ministral-8b-latest': { aliases: ['ministral-8b-2512'], context: 262144, caps: GENERALIST },
  'codestral-latest': {
    aliases: ['codestral-2508'],
    context: 131072,
    caps: ['completion_chat', 'function_calling', 'completion_fim'],
  },
  'mistral-embed': { aliases: ['mistral-embed-2312'], context: 8192, caps: [] },
  'codestral-embed': { aliases: ['codestral-embed-2505'], context: 8192, caps: [] },
  'mistral-moderation-latest': {
    aliases: ['mistral-moderation-2603'],
    context: 131072,
    caps: ['moderation', 'classification'],
  },
  'mistral-ocr-latest': { aliases: ['mistral-ocr-4-1'], context: 32768, caps: ['ocr'] },
};

function guess(id: string): Known {
  if (id.includes('embed')) return { aliases: [], context: 8192, caps: [] };
  if (id.includes('moderation')) {
    return { aliases: [], context: 131072, caps: ['moderation', 'classification'] };
  }
  if (id.includes('ocr')) return { aliases: [], context: 32768, caps: ['ocr'] };
  if (id.includes('codestral')) return { ...KNOWN['codestral-latest']!, aliases: [] };
  return { aliases: [], context: 131072, caps: GENERALIST };
}

// A fixed timestamp keeps listings byte-identical across runs.
const CREATED = 1767225600;

/** Serialised model cards: the list body and one body per ID or alias. */
export interface ModelCatalogue {
  listBody: string;
  cards: Map<string, string>;
}

/** Builds the cards for `ids` once; unknown IDs get capabilities guessed from their name. */
export function buildCatalogue(ids: readonly string[]): ModelCatalogue {
  const cards = new Map<string, string>();
  const data: Record<string, unknown>[] = [];
  for (const id of ids) {
    const known = KNOWN[id] ?? guess(id);
    const capabilities: Record<string, boolean> = {};
    for (const c of ALL_CAPABILITIES) capabilities[c] = known.caps.includes(c);
    const card = {
      id,
      object: 'model',
      created: CREATED,
      owned_by: 'mistralai',
      capabilities,
      name: id,
      description: `Loopback stand-in for ${id}`,
      max_context_length: known.context,
      aliases: known.aliases,
      deprecation: null,
      deprecation_replacement_model: null,
      default_model_temperature: known.caps.includes('completion_chat') ? 0.7 : null,
      type: 'base',
    };
    data.push(card);
    const json = JSON.stringify(card);
    cards.set(id, json);
    for (const alias of known.aliases) if (!cards.has(alias)) cards.set(alias, json);
  }
  return { listBody: JSON.stringify({ object: 'list', data }), cards };
}
