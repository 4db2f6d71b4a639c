/** What the user sees of the server's state: the language-status item and the stats document. */
import * as vscode from 'vscode';
import { DOCUMENTS, type QwenServer } from './server';
import { completesLanguage, SECTION } from './settings';
import { describe, type StatusView, WAITING } from './stats';

// Often enough to follow a model load; rare enough to stay out of the server's way.
const REFRESH_MS = 3000;

const SEVERITY = {
  info: vscode.LanguageStatusSeverity.Information,
  warning: vscode.LanguageStatusSeverity.Warning,
  error: vscode.LanguageStatusSeverity.Error,
};

/** The language-status item: model state, index state and the last completion's time. */
export class StatusItem implements vscode.Disposable {
  private readonly item = vscode.languages.createLanguageStatusItem('qwenLsp.status', DOCUMENTS);
  private readonly subscription: vscode.Disposable;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly server: QwenServer) {
    this.item.name = 'qwen-lsp';
    this.item.command = { title: 'Stats', command: 'qwenLsp.showStats' };
    this.subscription = vscode.Disposable.from(
      server.onDidChange(() => this.follow()),
      // The item says when completions are off for the language of the active file.
      vscode.window.onDidChangeActiveTextEditor(() => void this.refresh()),
    );
    this.follow();
  }

  /** Poll `qwenLsp/stats` only while the server runs: a stopped server has nothing to say. */
  private follow(): void {
    if (this.server.running && this.timer === undefined) {
      // Nobody looks at a window without focus; its item catches up on the next tick after.
      this.timer = setInterval(() => {
        if (vscode.window.state.focused) {
          void this.refresh();
        }
      }, REFRESH_MS);
    } else if (!this.server.running && this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
    void this.refresh();
  }

  async refresh(): Promise<void> {
    const stats = await this.server.stats();
    if (stats === undefined && this.server.waiting) {
      this.show(WAITING);
      return;
    }
    if (stats === undefined) {
      this.item.text = this.server.starting ? 'qwen-lsp: starting' : 'qwen-lsp: stopped';
      this.item.detail = this.server.starting ? '' : 'qwen-lsp: Restart Server starts it again';
      this.item.severity = this.server.starting ? SEVERITY.info : SEVERITY.warning;
      this.item.busy = this.server.starting;
      return;
    }
    const document = vscode.window.activeTextEditor?.document;
    const off =
      document !== undefined &&
      !completesLanguage(document.languageId, vscode.workspace.getConfiguration(SECTION).get('completion'));
    this.show(describe(stats, !this.server.inlineEnabled, off ? document.languageId : undefined));
  }

  private show(view: StatusView): void {
    this.item.text = view.text;
    this.item.detail = view.detail;
    this.item.severity = SEVERITY[view.level];
    this.item.busy = view.busy;
  }

  dispose(): void {
    clearInterval(this.timer);
    this.subscription.dispose();
    this.item.dispose();
  }
}

/** `qwenLsp/stats` as a read-only JSON document (a virtual document is never editable). */
export class StatsDocument implements vscode.TextDocumentContentProvider {
  static readonly scheme = 'qwen-lsp';
  private static readonly uri = vscode.Uri.parse(`${StatsDocument.scheme}:stats.json`);
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;

  constructor(private readonly server: QwenServer) {}

  async provideTextDocumentContent(): Promise<string> {
    const stats = await this.server.stats();
    return stats === undefined ? '// qwen-lsp is not running\n' : `${JSON.stringify(stats, null, 2)}\n`;
  }

  async show(): Promise<void> {
    this.changed.fire(StatsDocument.uri); // an already open document shows the new numbers
    const document = await vscode.workspace.openTextDocument(StatsDocument.uri);
    await vscode.window.showTextDocument(document, { preview: true });
  }
}
