/**
 * The server's `$/progress`, shown where the user can cancel it.
 *
 * vscode-languageclient shows server progress in the status bar (ProgressLocation.Window),
 * where VS Code offers no cancel button even for a cancellable progress. Indexing and a
 * code action (the model rewriting a function: seconds) are cancellable: they show as a
 * notification with Cancel, which sends `window/workDoneProgress/cancel`. The rest (the
 * model loading) stays in the status bar.
 */
import * as vscode from 'vscode';
import {
  type LanguageClient,
  type ProgressToken,
  WorkDoneProgress,
  type WorkDoneProgressBegin,
  WorkDoneProgressCancelNotification,
  WorkDoneProgressCreateRequest,
  type WorkDoneProgressReport,
} from 'vscode-languageclient/node';

/** Take over `window/workDoneProgress/create` from the client's own progress feature. */
export function showProgress(client: LanguageClient): vscode.Disposable {
  return client.onRequest(WorkDoneProgressCreateRequest.type, ({ token }) => {
    new CancellableProgress(client, token);
  });
}

class CancellableProgress {
  private done: (() => void) | undefined;
  private ended = false;
  private percentage = 0;
  private reporter: vscode.Progress<{ message?: string; increment?: number }> | undefined;
  private readonly subscription: vscode.Disposable;

  constructor(
    private readonly client: LanguageClient,
    private readonly token: ProgressToken,
  ) {
    this.subscription = client.onProgress(WorkDoneProgress.type, token, (value) => {
      if (value.kind === 'begin') {
        this.begin(value);
      } else if (value.kind === 'report') {
        this.report(value);
      } else {
        this.end();
      }
    });
  }

  private begin(value: WorkDoneProgressBegin): void {
    const cancellable = value.cancellable === true;
    void vscode.window.withProgress(
      {
        location: cancellable ? vscode.ProgressLocation.Notification : vscode.ProgressLocation.Window,
        title: value.title,
        cancellable,
      },
      (progress, cancel) =>
        new Promise<void>((resolve) => {
          if (this.ended) {
            resolve();
            return;
          }
          this.reporter = progress;
          this.done = resolve;
          this.report(value);
          cancel.onCancellationRequested(() => {
            void this.client.sendNotification(WorkDoneProgressCancelNotification.type, { token: this.token });
            this.end();
          });
        }),
    );
  }

  private report(value: WorkDoneProgressBegin | WorkDoneProgressReport): void {
    const step = value.percentage !== undefined ? Math.max(0, value.percentage - this.percentage) : undefined;
    if (value.percentage !== undefined) {
      this.percentage = value.percentage;
    }
    this.reporter?.report({ message: value.message, increment: step });
  }

  private end(): void {
    this.ended = true;
    this.subscription.dispose();
    this.done?.();
  }
}
