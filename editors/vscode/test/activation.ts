/**
 * Runs the extension's own `activate` against a fake `vscode` API and a fake language
 * client (VS Code cannot be downloaded here), to check when the server starts and what
 * the status item says. Prints one JSON object for tests/editors/test_vscode.py.
 *
 * Usage: node out/test/activation.js (from the compiled output of `tsc --outDir out`).
 */
import Module from 'node:module';
import * as path from 'node:path';

type Listener = (value: any) => void;
type Doc = { uri: { scheme: string; fsPath: string; path: string }; languageId: string; fileName: string };
type Item = { text?: string; detail?: string; severity?: number; selector: unknown };

const DEFAULT_LANGUAGES = {
  '*': true,
  plaintext: false,
  text: false,
  markdown: false,
  scminput: false,
  'git-commit': false,
  gitcommit: false,
  'git-rebase': false,
  gitrebase: false,
};

class World {
  config: Record<string, any> = {
    completion: { enabled: true, languages: { ...DEFAULT_LANGUAGES } },
    server: { command: [process.execPath] }, // any program that exists: the client is fake
  };
  documents: Doc[] = [];
  active: Doc | undefined;
  starts = 0;
  items: Item[] = [];
  open: Listener[] = [];
  configuration: Listener[] = [];
  editor: Listener[] = [];
}

let world = new World();

function on(list: Listener[]): (f: Listener) => { dispose(): void } {
  return (f) => {
    list.push(f);
    return { dispose: () => list.splice(list.indexOf(f) >>> 0, 1) };
  };
}

class EventEmitter {
  private listeners: Listener[] = [];
  event = on(this.listeners);
  fire(value?: unknown): void {
    this.listeners.forEach((f) => f(value));
  }
  dispose(): void {}
}

const vscode = {
  EventEmitter,
  Disposable: { from: (...items: { dispose(): void }[]) => ({ dispose: () => items.forEach((d) => d.dispose()) }) },
  LanguageStatusSeverity: { Information: 0, Warning: 1, Error: 2 },
  Uri: { parse: (text: string) => ({ toString: () => text }) },
  window: {
    createOutputChannel: () => ({ info() {}, warn() {}, error() {}, debug() {}, show() {}, dispose() {} }),
    setStatusBarMessage: () => ({ dispose() {} }),
    showErrorMessage: async () => undefined,
    state: { focused: true },
    get activeTextEditor() {
      return world.active && { document: world.active };
    },
    onDidChangeActiveTextEditor: (f: Listener) => on(world.editor)(f),
  },
  workspace: {
    get textDocuments() {
      return world.documents;
    },
    getConfiguration: () => ({
      get: (key: string) => key.split('.').reduce((o: any, part) => (o == null ? undefined : o[part]), world.config),
    }),
    onDidOpenTextDocument: (f: Listener) => on(world.open)(f),
    onDidChangeConfiguration: (f: Listener) => on(world.configuration)(f),
    registerTextDocumentContentProvider: () => ({ dispose() {} }),
  },
  languages: {
    match: (selector: { scheme: string }[], doc: Doc) => (selector.some((s) => s.scheme === doc.uri.scheme) ? 10 : 0),
    createLanguageStatusItem: (_id: string, selector: unknown) => {
      const item: Item = { selector };
      world.items.push(item);
      return { ...item, set text(v: string) { item.text = v; }, set detail(v: string) { item.detail = v; },
        set severity(v: number) { item.severity = v; }, set busy(_v: boolean) {}, set name(_v: string) {},
        set command(_v: unknown) {}, dispose() {} };
    },
  },
  commands: { registerCommand: () => ({ dispose() {} }), executeCommand: async () => undefined },
};

const State = { Stopped: 1, Running: 2, Starting: 3 };

class LanguageClient {
  state = State.Stopped;
  private listeners: Listener[] = [];
  onDidChangeState(f: Listener): void {
    this.listeners.push(f);
  }
  async start(): Promise<void> {
    world.starts += 1;
    this.state = State.Starting;
    this.listeners.forEach((f) => f(undefined));
    await null;
    this.state = State.Running;
    this.listeners.forEach((f) => f(undefined));
  }
  needsStop(): boolean {
    return this.state !== State.Stopped;
  }
  async stop(): Promise<void> {
    this.state = State.Stopped;
  }
  async sendRequest(): Promise<unknown> {
    return { model: 'ready', modelMessage: '', index: 'ready', indexMessage: '', requests: 0, recent: [] };
  }
}

const loader = Module as unknown as { _load: (request: string, ...rest: unknown[]) => unknown };
const load = loader._load;
loader._load = function (request: string, ...rest: unknown[]) {
  if (request === 'vscode') return vscode;
  if (request === 'vscode-languageclient/node') return { LanguageClient, State, CloseAction: {}, ErrorAction: {} };
  return load.call(this, request, ...rest);
};

const doc = (languageId: string, name: string, scheme = 'file'): Doc => ({
  uri: { scheme, fsPath: name, path: name },
  languageId,
  fileName: name,
});
const tick = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 10));

async function activated(documents: Doc[]): Promise<{ deactivate(): Promise<void> }> {
  world = new World();
  world.documents = documents;
  world.active = documents[0];
  // A fresh copy of the extension per scenario.
  for (const key of Object.keys(require.cache)) {
    if (key.includes(`${path.sep}src${path.sep}`) && !key.includes('node_modules')) delete require.cache[key];
  }
  const extension = require('../src/extension');
  const globalStorageUri = { path: '/home/u/.config/Code/User/globalStorage/qwen-lsp.qwen-lsp' };
  await extension.activate({ subscriptions: [], globalStorageUri });
  await tick();
  return extension;
}

const status = (): Pick<Item, 'text' | 'severity'> => ({ text: world.items[0]?.text, severity: world.items[0]?.severity });

async function main(): Promise<void> {
  const out: Record<string, unknown> = {};

  // A window of notes: nothing to complete, so no server, and the item says idle.
  await activated([doc('markdown', '/w/notes.md'), doc('plaintext', '/w/todo.txt')]);
  out.notes = { starts: world.starts, status: status(), selector: world.items[0]?.selector };
  // An output panel or a diff (other schemes) does not start it either; a Ruby file does.
  world.open.slice().forEach((f) => f(doc('python', 'extension-output-1', 'output')));
  await tick();
  out.otherScheme = world.starts;
  // VS Code's own settings.json (its user data folder) is not code to complete.
  world.open.slice().forEach((f) => f(doc('jsonc', '/home/u/.config/Code/User/settings.json')));
  await tick();
  out.editorSettings = world.starts;
  world.open.slice().forEach((f) => f(doc('ruby', '/w/app.rb')));
  await tick();
  world.open.slice().forEach((f) => f(doc('python', '/w/b.py')));
  await tick();
  out.afterRuby = world.starts;

  // Markdown turned on while notes are open: the server starts for them.
  await activated([doc('markdown', '/w/notes.md')]);
  world.config.completion.languages = { ...world.config.completion.languages, markdown: true };
  world.configuration.slice().forEach((f) => f({ affectsConfiguration: (s: string) => 'qwenLsp.completion.languages'.startsWith(s) }));
  await tick();
  out.markdownTurnedOn = world.starts;

  // A code file open at start: the server starts at once; the item follows the active file.
  await activated([doc('python', '/w/a.py'), doc('markdown', '/w/notes.md')]);
  out.codeAtStart = world.starts;
  world.active = world.documents[1];
  world.editor.forEach((f) => f(undefined));
  await tick();
  out.inNotes = status();
  world.active = world.documents[0];
  world.editor.forEach((f) => f(undefined));
  await tick();
  out.inCode = status();

  console.log(JSON.stringify(out));
  process.exit(0);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
