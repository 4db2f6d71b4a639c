/**
 * The `qwenLsp` settings as the server receives them.
 *
 * No `vscode` import: the end-to-end test runs this module under plain node and sends the
 * server exactly what the extension would.
 */

export const SECTION = 'qwenLsp';

/** The sections the server reads (docs/configuration.md); the rest of `qwenLsp` is the client's. */
export const SERVER_SECTIONS = [
  'model',
  'completion',
  'context',
  'engine',
  'codeActions',
  'protocol',
  'diagnostics',
] as const;

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

/**
 * Whether documents of `languageId` get completions: the server's `completion.languages`
 * rule (lsp_server/settings.py), on the `completion` section as `getConfiguration` gives it
 * (VS Code has already merged the user's map over the default one). The extension starts
 * the server for the first such document, so opening a Markdown note loads no model.
 */
export function completesLanguage(languageId: string, completion: unknown): boolean {
  const languages =
    completion !== null && typeof completion === 'object' ? (completion as Record<string, unknown>).languages : undefined;
  const map = languages !== null && typeof languages === 'object' ? (languages as Record<string, unknown>) : {};
  // As the server: an entry that is not a boolean is not used.
  const own = map[languageId];
  if (typeof own === 'boolean') {
    return own;
  }
  const rest = map['*'];
  return typeof rest === 'boolean' ? rest : true;
}

/**
 * The folder VS Code keeps its own settings in (settings.json, keybindings.json, profiles,
 * Machine settings), from the extension's global storage (`<root>/User/globalStorage/…`,
 * or `<root>/User/profiles/<id>/globalStorage/…`).
 */
export function userDataRoot(globalStoragePath: string): string | undefined {
  const at = globalStoragePath.replace(/\\/g, '/').lastIndexOf('/User/');
  return at > 0 ? globalStoragePath.slice(0, at) : undefined;
}

/**
 * Whether a document is one of VS Code's own settings files: JSON that configures the
 * editor, not code to complete (a suggestion there is noise at best, a broken setting at
 * worst). `path` is the document's path, `scheme` its URI scheme.
 */
export function isEditorSettings(scheme: string, path: string, root: string | undefined): boolean {
  if (scheme === 'vscode-userdata') {
    return true;
  }
  if (root === undefined) {
    return false;
  }
  const norm = (p: string): string => p.replace(/\\/g, '/').replace(/\/+$/, '');
  const base = norm(root);
  return norm(path).startsWith(`${base}/User/`) || norm(path).startsWith(`${base}/Machine/`);
}
