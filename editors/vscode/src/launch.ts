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

/**
 * The program and its arguments from the setting's value: a list of strings, or one string
 * naming the program alone (a path may hold spaces: it is not split).
 */
export function serverLaunch(value: unknown): Launch {
  const words = typeof value === 'string' ? [value] : (value ?? DEFAULT_COMMAND);
  if (!Array.isArray(words) || words.length === 0 || !words.every((w) => typeof w === 'string' && w !== '')) {
    return { error: `qwenLsp.server.command must be a non-empty list of strings, got ${JSON.stringify(value)}.` };
  }
  const [command, ...args] = (words as string[]).map((word) => expandHome(word));
  return { command, args };
}

/** `~`, `~/…` (and `~\…` on Windows) and VS Code's `${userHome}`: no shell expands them. */
export function expandHome(word: string, platform: string = process.platform): string {
  const home = process.env.HOME ?? process.env.USERPROFILE;
  if (!home) {
    return word;
  }
  if (word.startsWith('${userHome}')) {
    return path.join(home, word.slice('${userHome}'.length));
  }
  const separators = platform === 'win32' ? ['/', '\\'] : ['/'];
  if (word === '~' || separators.some((sep) => word.startsWith(`~${sep}`))) {
    return path.join(home, word.slice(1));
  }
  return word;
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
