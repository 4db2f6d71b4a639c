/**
 * The `qwenLsp/stats` answer and what the status item makes of it.
 *
 * No `vscode` import, so the end-to-end test checks the summary against a real server.
 */

export const STATS_METHOD = 'qwenLsp/stats';

/** One recent request, as lsp_server/completion/stats.py records it. */
export interface RecentRequest {
  kind: string;
  path: string;
  outcome: string;
  totalMs: number;
  generatedTokens: number;
}

/** The engine process that holds the model (docs/shared-engine.md). */
export interface EngineProcess {
  shared: boolean;
  pid: number;
  editors: { name: string; pid: number; workspace: string }[];
}

/** The fields of the answer the client reads (the server sends more: figures, checkpoints). */
export interface Stats {
  engineProcess?: EngineProcess;
  model: 'idle' | 'loading' | 'ready' | 'failed' | 'disabled';
  modelMessage: string;
  index: 'off' | 'building' | 'ready' | 'cancelled' | 'failed';
  indexMessage: string;
  requests: number;
  recent: RecentRequest[];
}

export interface StatusView {
  text: string;
  detail: string;
  level: 'info' | 'warning' | 'error';
  busy: boolean;
}

const MODEL_TEXT: Record<Stats['model'], string> = {
  idle: 'not loaded',
  loading: 'loading model',
  ready: 'ready',
  failed: 'model failed',
  disabled: 'no model',
};

/** The most characters of the status item's detail that fit its hover row with the link. */
export const DETAIL_MAX = 40;

function shorten(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1).trimEnd()}…`;
}

/** The status item while the server waits for the first document it would complete. */
export const WAITING: StatusView = {
  text: 'qwen-lsp: idle',
  detail: 'starts with the first file it completes (qwenLsp.completion.languages)',
  level: 'info',
  busy: false,
};

/**
 * The status item for `stats`; `paused` is the session toggle (`qwenLsp.toggle`), `offFor`
 * the language of the active document when completions are off for it.
 */
export function describe(stats: Stats, paused: boolean, offFor?: string): StatusView {
  if (offFor !== undefined && stats.model !== 'failed') {
    return {
      text: `qwen-lsp: off for ${offFor}`,
      detail: 'qwenLsp.completion.languages turns it on',
      level: 'info',
      busy: stats.model === 'loading' || stats.index === 'building',
    };
  }
  const last = [...stats.recent].reverse().find((r) => r.kind === 'completion' && r.outcome !== 'cancelled');
  let text = `qwen-lsp: ${MODEL_TEXT[stats.model] ?? stats.model}`;
  if (paused) {
    text = 'qwen-lsp: paused';
  } else if (stats.model === 'ready' && last?.outcome === 'error') {
    text += ' · last completion failed';
  } else if (stats.model === 'ready' && last) {
    text += ` · ${Math.round(last.totalMs)} ms`;
  }
  // Short: the language-status hover is one row of 500 px per item, and a long detail
  // pushed the "Stats" link and the pin button out of it. The model's full message is
  // in the stats document (the link) and the log.
  const detail =
    stats.model === 'ready'
      ? [
          // A ready index goes without saying, and the count of completions is in the
          // stats document: each pushed the Stats link off a hover at the window's edge
          // once the time in the text grew to "· 98 ms" on a loaded machine.
          stats.index === 'ready' ? '' : `index ${stats.index}`,
          engineText(stats.engineProcess),
        ]
          .filter((part) => part !== '')
          .join(' · ')
      : stats.model === 'idle'
        ? // The server's message ("not loaded yet (loads at the first completion)") repeats
          // the text's "not loaded" and was cut at "(loads at the first comp…".
          'loads at the first completion'
        : shorten(stats.modelMessage || `index ${stats.index}`, DETAIL_MAX);
  const level =
    stats.model === 'failed'
      ? 'error'
      : stats.model === 'disabled' || (!paused && last?.outcome === 'error')
        ? 'warning'
        : 'info';
  return { text, detail, level, busy: stats.model === 'loading' || stats.index === 'building' };
}

/** "shared ×3": the engine process and how many editors share it ("" without one; their
 * names are in the stats document). Short: the hover's Stats link must stay on screen. */
function engineText(engine: EngineProcess | undefined): string {
  if (engine === undefined) {
    return '';
  }
  const count = engine.editors.length;
  return engine.shared ? `shared ×${count}` : 'own engine';
}
