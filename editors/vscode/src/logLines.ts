/**
 * The server's stderr, line by line, at the level the server logged it.
 *
 * vscode-languageclient writes every stderr line to the output channel as an error, so a
 * real error looked like INFO. The server logs `DATE TIME LEVEL logger: message`
 * (lsp_server/cli.py); a line in another shape (a traceback, llama.cpp's own output)
 * belongs to the record before it. No `vscode` import: checked under plain node.
 */

export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';

const RECORD = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) (.*)$/;

const LEVELS: Record<string, Level> = {
  DEBUG: 'debug',
  INFO: 'info',
  WARNING: 'warn',
  ERROR: 'error',
  CRITICAL: 'error',
};

/** Follows the records of one stream: `level(line)` says where each line goes. */
export class LogLines {
  private last: Level = 'info';

  /** The level and the text to log (the channel adds its own time). */
  read(line: string): { level: Level; text: string } {
    const match = RECORD.exec(line);
    if (match === null) {
      return { level: this.last, text: line };
    }
    this.last = LEVELS[match[1]] ?? 'info';
    return { level: this.last, text: match[2] };
  }
}
