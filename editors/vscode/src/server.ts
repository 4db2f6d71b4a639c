/** Starting, stopping and restarting the language client over the qwen-lsp server. */
import * as vscode from 'vscode';
import {
  CloseAction,
  type CloseHandlerResult,
  ErrorAction,
  LanguageClient,
  type LanguageClientOptions,
  State,
} from 'vscode-languageclient/node';
import * as readline from 'node:readline';
import { findExecutable, INSTALL_HINT, serverLaunch } from './launch';
import { LogLines } from './logLines';
import { showProgress } from './progress';
import { initializationOptions, isEditorSettings, SECTION } from './settings';
import { STATS_METHOD, type Stats } from './stats';

/**
 * The documents the client syncs: every saved file and every new, never saved buffer, in any
 * language, and the cells of notebooks (synced as notebooks: the server completes a cell with
 * the code of the cells above). The server decides which languages it completes
 * (`completion.languages`).
 */
export const DOCUMENTS = [{ scheme: 'file' }, { scheme: 'untitled' }, { scheme: 'vscode-notebook-cell' }];

// The server is restarted after a crash, but not in a loop: after this many crashes
// within the window it stays down and the user gets one message.
const MAX_CRASHES = 3;
const STOP_TIMEOUT_MS = 10_000;
const CRASH_WINDOW_MS = 3 * 60_000;

export class QwenServer implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private progress: vscode.Disposable | undefined;
  /** The program started last: a settings change restarts only when it changes. */
  private launched: string | undefined;
  private crashes: number[] = [];
  private readonly changed = new vscode.EventEmitter<void>();
  /** Fires when the client starts or stops (the status item polls only while it runs). */
  readonly onDidChange = this.changed.event;
  /** The session switch of `qwenLsp.toggle`: while off, no inline request reaches the server. */
  inlineEnabled = true;
  /** Not started yet, by design: no open document is one the server would complete. */
  waiting = false;

  /** `userData`: VS Code's own settings folder (no completions in its files). */
  constructor(
    private readonly log: vscode.LogOutputChannel,
    private readonly userData?: string,
  ) {}

  /** VS Code's settings.json, keybindings.json and the like: not code to complete. */
  isEditorSettings(uri: vscode.Uri): boolean {
    return isEditorSettings(uri.scheme, uri.path, this.userData);
  }

  /** Restart for a changed `qwenLsp.server.command`, only when the program really changed. */
  async commandChanged(): Promise<void> {
    const launch = serverLaunch(vscode.workspace.getConfiguration(SECTION).get('server.command'));
    if (this.client !== undefined && JSON.stringify(launch) === this.launched) {
      this.log.info('qwenLsp.server.command: the program to run is unchanged (no restart)');
      return;
    }
    await this.restart();
  }

  get running(): boolean {
    return this.client?.state === State.Running;
  }

  get starting(): boolean {
    return this.client?.state === State.Starting;
  }

  async start(): Promise<void> {
    this.waiting = false;
    const launch = serverLaunch(vscode.workspace.getConfiguration(SECTION).get('server.command'));
    if ('error' in launch) {
      this.fail(launch.error);
      return;
    }
    if (findExecutable(launch.command) === undefined) {
      // `qwenLsp.server.command` is machine-overridable: in a remote window only the
      // settings of the machine the server runs on count, not the User settings.
      const where = vscode.env.remoteName
        ? ` This is a remote window (${vscode.env.remoteName}): set it in the Remote settings ` +
          '("Preferences: Open Remote Settings"), not in the User settings, which VS Code ignores for it here.'
        : '';
      this.fail(`the server program \`${launch.command}\` was not found. ${INSTALL_HINT}${where}`);
      return;
    }
    this.launched = JSON.stringify(launch);
    this.log.info(`starting ${[launch.command, ...launch.args].join(' ')}`);
    const client = new LanguageClient(
      'qwenLsp',
      'qwen-lsp',
      // No `transport`: stdio all the same, without the `--stdio` flag the client would add.
      { command: launch.command, args: launch.args },
      this.clientOptions(),
    );
    client.onDidChangeState(() => this.changed.fire());
    this.client = client;
    try {
      await client.start();
      this.progress = showProgress(client);
    } catch (error) {
      // The client has already shown its own message and logged the server's stderr.
      this.log.error(`the server did not start: ${String(error)}`);
    }
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.progress?.dispose();
    this.progress = undefined;
    if (client?.needsStop()) {
      // Time to free the model (gigabytes) and exit; the client's default (2 s) killed
      // the server on a busy machine, logged as an error.
      await client.stop(STOP_TIMEOUT_MS);
    }
    this.changed.fire();
  }

  async restart(): Promise<void> {
    await this.stop();
    this.crashes = [];
    await this.start();
  }

  /** The server's `qwenLsp/stats`, or undefined when it is not running or does not answer. */
  async stats(): Promise<Stats | undefined> {
    if (!this.running) {
      return undefined;
    }
    try {
      return await this.client?.sendRequest<Stats>(STATS_METHOD, {});
    } catch (error) {
      this.log.debug(`${STATS_METHOD} failed: ${String(error)}`);
      return undefined;
    }
  }

  dispose(): void {
    void this.stop();
    this.changed.dispose();
  }

  private clientOptions(): LanguageClientOptions {
    return {
      documentSelector: DOCUMENTS,
      outputChannel: this.log,
      // The server's log lines at their own level (the client's default: all as errors).
      stdioOptions: {
        stdout: (input, channel) => {
          readline.createInterface({ input, crlfDelay: Infinity, terminal: false }).on('line', (l) => channel.info(l));
        },
        stderr: (input, channel) => {
          const lines = new LogLines();
          readline.createInterface({ input, crlfDelay: Infinity, terminal: false }).on('line', (line) => {
            const { level, text } = lines.read(line);
            channel[level](text);
          });
        },
      },
      // Read at each (re)start, so a restart picks up the current settings.
      initializationOptions: () => {
        const config = vscode.workspace.getConfiguration(SECTION);
        return initializationOptions((section) => config.get(section));
      },
      synchronize: { configurationSection: SECTION },
      middleware: {
        provideInlineCompletionItems: (document, position, context, token, next) =>
          this.inlineEnabled && !this.isEditorSettings(document.uri) ? next(document, position, context, token) : null,
        // The server's textDocument/completion is for editors without ghost text; in VS Code
        // it would show the same suggestion again in the suggest widget, on every space.
        provideCompletionItem: () => null,
      },
      errorHandler: {
        error: () => ({ action: ErrorAction.Continue, handled: true }),
        closed: () => this.closed(),
      },
    };
  }

  private closed(): CloseHandlerResult {
    const now = Date.now();
    this.crashes = [...this.crashes.filter((t) => now - t < CRASH_WINDOW_MS), now];
    if (this.crashes.length <= MAX_CRASHES) {
      this.log.warn(`the server stopped unexpectedly; restarting it (${this.crashes.length}/${MAX_CRASHES})`);
      return { action: CloseAction.Restart, handled: true };
    }
    this.fail(
      `the server crashed ${this.crashes.length} times in ${CRASH_WINDOW_MS / 60_000} minutes and was not restarted. ` +
        'Its log is in the "qwen-lsp" output; run `qwen-lsp doctor` to check the install, then "qwen-lsp: Restart Server".',
    );
    return { action: CloseAction.DoNotRestart, handled: true };
  }

  /** One message with the way out; the details are in the log. */
  private fail(message: string): void {
    this.log.error(message);
    void vscode.window.showErrorMessage(`qwen-lsp: ${message}`, 'Open Settings', 'Show Log').then((choice) => {
      if (choice === 'Open Settings' && vscode.env.remoteName) {
        void vscode.commands.executeCommand('workbench.action.openRemoteSettings');
      } else if (choice === 'Open Settings') {
        void vscode.commands.executeCommand('workbench.action.openSettings', 'qwenLsp.server.command');
      } else if (choice === 'Show Log') {
        this.log.show();
      }
    });
  }
}
