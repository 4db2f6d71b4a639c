/**
 * Drives the real qwen-lsp server the way the extension does, with the protocol libraries
 * vscode-languageclient is built on, and prints what happened as one JSON object for
 * tests/editors/test_vscode.py to check.
 *
 * Usage: node out/test/e2e.js PACKAGE_JSON WORKSPACE, with QWEN_LSP_SERVER_COMMAND the
 * `qwenLsp.server.command` value (JSON) and QWEN_LSP_TEST_SETTINGS the user's settings (JSON,
 * dotted keys as in settings.json). Every key the user does not set takes its default from the
 * extension's manifest, as in VS Code.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  ConfigurationRequest,
  createProtocolConnection,
  DidChangeConfigurationNotification,
  DidOpenTextDocumentNotification,
  ExitNotification,
  InitializedNotification,
  InitializeRequest,
  InlineCompletionRequest,
  InlineCompletionTriggerKind,
  RegistrationRequest,
  ShowMessageNotification,
  ShutdownRequest,
  StreamMessageReader,
  StreamMessageWriter,
  WorkDoneProgressCreateRequest,
} from 'vscode-languageserver-protocol/node';
import { expandHome, findExecutable, serverLaunch } from '../src/launch';
import { completesLanguage, initializationOptions, SECTION } from '../src/settings';
import { describe, STATS_METHOD, type Stats, WAITING } from '../src/stats';

const SOURCE = 'import math\n\n\ndef area(radius):\n    return math.pi * radius ** 2\n\n\ndef circumference(radius):\n    return ';

type Properties = Record<string, { default: unknown }>;

/** The `qwenLsp` section as VS Code's `getConfiguration` nests it: defaults, then the user's values. */
function configuration(manifestPath: string, user: Record<string, unknown>): Record<string, Record<string, unknown>> {
  const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
  const properties = manifest.contributes.configuration[0].properties as Properties;
  const tree: Record<string, Record<string, unknown>> = {};
  const flat = { ...Object.fromEntries(Object.entries(properties).map(([k, p]) => [k, p.default])), ...user };
  for (const [key, value] of Object.entries(flat)) {
    const [, section, name] = key.split('.');
    const fallback = properties[key]?.default;
    // VS Code merges an object setting over its default; other values replace it.
    const merged =
      isObject(value) && isObject(fallback) && key in user ? { ...fallback, ...value } : value;
    (tree[section] ??= {})[name] = merged;
  }
  return tree;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

async function main(): Promise<void> {
  const [manifestPath, workspace] = process.argv.slice(2);
  const user = JSON.parse(process.env.QWEN_LSP_TEST_SETTINGS ?? '{}') as Record<string, unknown>;
  let config = configuration(manifestPath, user);
  const launch = serverLaunch(JSON.parse(process.env.QWEN_LSP_SERVER_COMMAND ?? 'null'));
  if ('error' in launch) {
    throw new Error(launch.error);
  }
  const server = spawn(findExecutable(launch.command) ?? launch.command, launch.args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const connection = createProtocolConnection(new StreamMessageReader(server.stdout), new StreamMessageWriter(server.stdin));
  const messages: string[] = [];
  const pulls: number[] = [];
  connection.onNotification(ShowMessageNotification.type, (params) => {
    messages.push(params.message);
  });
  // VS Code's client answers `workspace/configuration` with the whole section, client keys included.
  connection.onRequest(ConfigurationRequest.type, (params) => {
    pulls.push(params.items.length);
    return params.items.map((item) => (item.section === SECTION ? config : null));
  });
  connection.onRequest(WorkDoneProgressCreateRequest.type, () => {});
  connection.onRequest(RegistrationRequest.type, () => {});
  connection.listen();

  const options = initializationOptions((section) => config[section]);
  const init = await connection.sendRequest(InitializeRequest.type, {
    processId: process.pid,
    rootUri: pathToFileURL(workspace).href,
    workspaceFolders: [{ uri: pathToFileURL(workspace).href, name: path.basename(workspace) }],
    capabilities: {
      workspace: { configuration: true, didChangeConfiguration: { dynamicRegistration: true } },
      window: { workDoneProgress: true },
      textDocument: { inlineCompletion: { dynamicRegistration: true } },
      notebookDocument: { synchronization: { dynamicRegistration: true } },
    },
    initializationOptions: options,
  });
  await connection.sendNotification(InitializedNotification.type, {});

  const file = path.join(workspace, 'circle.py');
  fs.writeFileSync(file, SOURCE);
  const uri = pathToFileURL(file).href;
  await connection.sendNotification(DidOpenTextDocumentNotification.type, {
    textDocument: { uri, languageId: 'python', version: 1, text: SOURCE },
  });
  const stats = (): Promise<Stats> => connection.sendRequest<Stats>(STATS_METHOD, {});
  const deadline = Date.now() + 60_000;
  while (['idle', 'loading'].includes((await stats()).model) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const lines = SOURCE.split('\n');
  const inline = () =>
    connection.sendRequest(InlineCompletionRequest.type, {
      textDocument: { uri },
      position: { line: lines.length - 1, character: lines[lines.length - 1].length },
      context: { triggerKind: InlineCompletionTriggerKind.Invoked },
    });
  const items = await inline();
  const afterCompletion = await stats();

  // Any language reaches the server; the defaults keep prose out.
  const other = async (name: string, languageId: string, text: string) => {
    const otherUri = pathToFileURL(path.join(workspace, name)).href;
    await connection.sendNotification(DidOpenTextDocumentNotification.type, {
      textDocument: { uri: otherUri, languageId, version: 1, text },
    });
    const otherLines = text.split('\n');
    const result = await connection.sendRequest(InlineCompletionRequest.type, {
      textDocument: { uri: otherUri },
      position: { line: otherLines.length - 1, character: otherLines[otherLines.length - 1].length },
      context: { triggerKind: InlineCompletionTriggerKind.Invoked },
    });
    return Array.isArray(result) ? result : (result?.items ?? []);
  };
  const rubyItems = await other('greeter.rb', 'ruby', 'class Greeter\n  def greet(name)\n    puts ');
  const markdownItems = await other('notes.md', 'markdown', '# Notes\n\nThe area of a circle is ');
  const startsFor = Object.fromEntries(
    ['python', 'ruby', 'markdown', 'plaintext', 'yaml'].map((id) => [id, completesLanguage(id, config.completion)]),
  );

  // What `synchronize.configurationSection` sends when the user turns completions off.
  config = { ...config, completion: { ...config.completion, enabled: false } };
  await connection.sendNotification(DidChangeConfigurationNotification.type, { settings: { [SECTION]: config } });
  const disabled = await inline();

  await connection.sendRequest(ShutdownRequest.type);
  await connection.sendNotification(ExitNotification.type);
  connection.dispose();
  console.log(
    JSON.stringify({
      inlineCompletionProvider: init.capabilities.inlineCompletionProvider ?? null,
      notebookDocumentSync: init.capabilities.notebookDocumentSync ?? null,
      initializationOptions: options,
      items: Array.isArray(items) ? items : (items?.items ?? []),
      stats: afterCompletion,
      status: describe(afterCompletion, false),
      pausedStatus: describe(afterCompletion, true),
      failedStatus: describe(
        { ...afterCompletion, recent: [...afterCompletion.recent, { kind: 'completion', path: 'a.py', outcome: 'error', totalMs: 2000, generatedTokens: 0 }] },
        false,
      ),
      disabledItems: Array.isArray(disabled) ? disabled : (disabled?.items ?? []),
      rubyItems,
      markdownItems,
      startsFor,
      notBoolean: [
        completesLanguage('ruby', { languages: { ruby: 'no', '*': false } }),
        completesLanguage('ruby', { languages: { ruby: null } }),
      ],
      offStatus: describe(afterCompletion, false, 'markdown'),
      idleStatus: describe(
        { ...afterCompletion, model: 'idle', modelMessage: 'not loaded yet (loads at the first completion)', recent: [] },
        false,
      ),
      waitingStatus: WAITING,
      messages,
      pulls,
      missingProgram: findExecutable('qwen-lsp-no-such-program') ?? null,
      invalidCommand: serverLaunch(['']),
      stringCommand: serverLaunch('qwen-lsp'),
      homeCommand: serverLaunch(['~/venv/bin/qwen-lsp', '--log-file', '${userHome}/q.log']),
      windowsHome: expandHome('~\\venv\\qwen-lsp.exe', 'win32').startsWith('~'),
    }),
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
