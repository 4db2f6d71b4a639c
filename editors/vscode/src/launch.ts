/**
 * How the server process is found and started (`qwenLsp.server.command`).
 *
 * No `vscode` import, so the checks run under plain node in the tests.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const DEFAULT_COMMAND = ['qwen-lsp'];

/** Shown with every "cannot start" message: the fix, not just the failure. */
export const INSTALL_HINT =
  "Install the server (`pip install '.[pull]'` in a qwen-lsp checkout, then `qwen-lsp pull`), " +
  'or set `qwenLsp.server.command` to its full path, e.g. `["/path/to/venv/bin/qwen-lsp"]`.';

export type Launch = { command: string; args: string[] } | { error: string };

/** The program and its arguments from the setting's value (a list of strings). */
export function serverLaunch(value: unknown): Launch {
  const words = value ?? DEFAULT_COMMAND;
  if (!Array.isArray(words) || words.length === 0 || !words.every((w) => typeof w === 'string' && w !== '')) {
    return { error: `qwenLsp.server.command must be a non-empty list of strings, got ${JSON.stringify(value)}.` };
  }
  const [command, ...args] = words as string[];
  return { command: expandHome(command), args };
}

function expandHome(file: string): string {
  const home = process.env.HOME ?? process.env.USERPROFILE;
  return home && (file === '~' || file.startsWith('~/')) ? path.join(home, file.slice(1)) : file;
}

/**
 * The executable `command` names, looked up on PATH like a shell would, or undefined.
 *
 * Checked before starting the client: a missing program then gets one message with the fix
 * instead of the language client's generic "couldn't create connection" error.
 */
export function findExecutable(command: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const extensions = process.platform === 'win32' ? ['', ...(env.PATHEXT ?? '.EXE;.CMD;.BAT').split(';')] : [''];
  const folders = command.includes('/') || command.includes(path.sep) ? [''] : (env.PATH ?? '').split(path.delimiter);
  for (const folder of folders) {
    for (const extension of extensions) {
      const candidate = path.resolve(folder, command + extension);
      try {
        fs.accessSync(candidate, fs.constants.X_OK);
        if (fs.statSync(candidate).isFile()) {
          return candidate;
        }
      } catch {
        // not here: try the next folder
      }
    }
  }
  return undefined;
}
