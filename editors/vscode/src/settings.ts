/**
 * The `qwenLsp` settings as the server receives them.
 *
 * No `vscode` import: the end-to-end test runs this module under plain node and sends the
 * server exactly what the extension would.
 */

export const SECTION = 'qwenLsp';

/** The sections the server reads (docs/configuration.md); the rest of `qwenLsp` is the client's. */
export const SERVER_SECTIONS = ['model', 'completion', 'context', 'engine', 'codeActions'] as const;

export type ServerSettings = Partial<Record<(typeof SERVER_SECTIONS)[number], Record<string, unknown>>>;

/**
 * The `initializationOptions` of `initialize`: the server's sections of the settings.
 *
 * `get` is `WorkspaceConfiguration.get` of the `qwenLsp` section (or a plain lookup in tests).
 * Client-only keys (`server.*`) stay out, and values are copied to plain JSON because VS Code
 * hands out frozen proxies.
 */
export function initializationOptions(get: (section: string) => unknown): ServerSettings {
  const options: ServerSettings = {};
  for (const section of SERVER_SECTIONS) {
    const value = get(section);
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      options[section] = JSON.parse(JSON.stringify(value)) as Record<string, unknown>;
    }
  }
  return options;
}
