/** Entry point: wires the server, the status item and the commands together. */
import * as vscode from 'vscode';
import { DOCUMENTS, QwenServer } from './server';
import { completesLanguage, SECTION, userDataRoot } from './settings';
import { StatsDocument, StatusItem } from './status';

// Kept for deactivate, which VS Code awaits: the server gets to shut down cleanly.
let running: QwenServer | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  // One channel for the client, the server's stderr and the extension's own messages.
  const log = vscode.window.createOutputChannel('qwen-lsp', { log: true });
  const server = new QwenServer(log, userDataRoot(context.globalStorageUri.path));
  running = server;
  const status = new StatusItem(server);
  const statsDocument = new StatsDocument(server);
  context.subscriptions.push(
    server,
    status,
    vscode.workspace.registerTextDocumentContentProvider(StatsDocument.scheme, statsDocument),
    vscode.commands.registerCommand('qwenLsp.restart', () => server.restart()),
    vscode.commands.registerCommand('qwenLsp.showStats', () => statsDocument.show()),
    vscode.commands.registerCommand('qwenLsp.toggle', async () => {
      server.inlineEnabled = !server.inlineEnabled;
      await status.refresh();
      void vscode.window.setStatusBarMessage(
        `qwen-lsp: inline completions ${server.inlineEnabled ? 'on' : 'paused for this session'}`,
        3000,
      );
    }),
    // The server follows its own settings live; only a new program needs a new process.
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration(`${SECTION}.server`)) {
        void server.commandChanged();
      }
    }),
    log, // last: disposed after everything that may still write to it
  );
  // The server (and the model, gigabytes of memory) starts with the first document it would
  // complete, not with every window: a window holding only notes loads nothing.
  const wanted = (document: vscode.TextDocument): boolean =>
    vscode.languages.match(DOCUMENTS, document) > 0 &&
    !server.isEditorSettings(document.uri) &&
    completesLanguage(document.languageId, vscode.workspace.getConfiguration(SECTION).get('completion'));
  if (vscode.workspace.textDocuments.some(wanted)) {
    await server.start();
    return;
  }
  server.waiting = true;
  await status.refresh();
  const startFor = (documents: readonly vscode.TextDocument[]): void => {
    if (server.waiting && documents.some(wanted)) {
      void server.start();
    }
  };
  context.subscriptions.push(
    vscode.workspace.onDidOpenTextDocument((document) => startFor([document])),
    // A language turned on while its documents are open: start for them.
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration(`${SECTION}.completion`)) {
        startFor(vscode.workspace.textDocuments);
      }
    }),
  );
}

export async function deactivate(): Promise<void> {
  await running?.stop();
}
