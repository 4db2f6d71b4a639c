// A person's session in a real VS Code (code-server in headless Chromium, driven by
// playwright-core): open a project file, type, see ghost text, accept it with Tab, run the
// extension's three commands, read the status item, run a code action.
//
//   node drive.mjs CONFIG.json
//
// CONFIG: { url, chromium, playwright (the playwright-core folder), file (relative to the
// workspace), line (1-based, an empty line to type on), typed, action (a code action title), actionLineText (the line to run it on), artifacts }.
// Prints one JSON object of what was seen; on a failure, a screenshot of the moment and
// the error go to `artifacts` and the exit status is 1.
import { createRequire } from 'node:module';
import * as fs from 'node:fs';
import * as path from 'node:path';

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const require = createRequire(path.join(config.playwright, 'package.json'));
const { chromium } = require(config.playwright);

const seen = { steps: [] };
const mod = process.platform === 'darwin' ? 'Meta' : 'Control';

const browser = await chromium.launch({
  executablePath: config.chromium,
  headless: true,
  args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
});
const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
let stepNo = 0;

async function shot(name) {
  stepNo += 1;
  const file = path.join(config.artifacts, `${String(stepNo).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file }).catch(() => undefined);
  return file;
}

async function step(name, fn) {
  const started = Date.now();
  try {
    const value = await fn();
    seen.steps.push({ name, ms: Date.now() - started });
    await shot(name);
    return value;
  } catch (error) {
    const file = await shot(`FAILED-${name}`);
    throw new Error(`${name}: ${error.message}\nscreenshot: ${file}`);
  }
}

/** The text of the editor's visible lines, as drawn (ghost text included). */
async function visibleText() {
  return page.locator('.monaco-editor .view-lines').first().innerText();
}

async function ghostText() {
  const ghosts = page.locator('.monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text');
  const count = await ghosts.count();
  const parts = [];
  for (let i = 0; i < count; i += 1) {
    parts.push(await ghosts.nth(i).innerText());
  }
  return parts.join('\n');
}

/** Run a command from the palette by its title. */
async function runCommand(title) {
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible' });
  await input.fill(`>${title}`);
  const row = page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first();
  await row.waitFor({ state: 'visible', timeout: 15000 });
  await page.keyboard.press('Enter');
}

async function notifications() {
  return page.locator('.notifications-toasts .notification-toast').allInnerTexts();
}

try {
  await step('workbench', async () => {
    await page.goto(config.url);
    await page.locator('.monaco-workbench').waitFor({ timeout: 60000 });
    await page.locator('.explorer-folders-view, .explorer-viewlet').first().waitFor({ timeout: 60000 });
  });

  await step('open-file', async () => {
    // Through the Explorer, folder by folder, as a person does.
    const parts = config.file.split('/');
    for (const [i, part] of parts.entries()) {
      const row = page.locator('.explorer-folders-view .monaco-list-row', { hasText: part }).first();
      await row.waitFor({ timeout: 30000 });
      await row.click();
      if (i === parts.length - 1) {
        await row.dblclick(); // a pinned editor, not a preview
      }
    }
    await page.locator('.tab', { hasText: parts[parts.length - 1] }).first().waitFor({ timeout: 30000 });
    await page.locator('.monaco-editor .view-lines').first().waitFor();
  });

  /** The language status item's accessible label: it holds our item's text and detail. */
  const languageStatus = () => page.locator('[id="status.languageStatus"]').first().getAttribute('aria-label');

  // A person waits for the status to say ready before expecting suggestions.
  seen.readyStatus = await step('status-ready', async () => {
    await page.waitForFunction(
      () => /qwen-lsp: ready/.test(document.getElementById('status.languageStatus')?.getAttribute('aria-label') ?? ''),
      undefined,
      { timeout: 60000 },
    );
    return languageStatus();
  });

  seen.ghost = await step('ghost-text', async () => {
    await page.keyboard.press(`${mod}+G`);
    await page.keyboard.type(String(config.line));
    await page.keyboard.press('Enter');
    await page.keyboard.press('End');
    await page.keyboard.type(config.typed, { delay: 60 });
    await page.locator('.monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text').first().waitFor({ timeout: 60000 });
    return ghostText();
  });

  seen.accepted = await step('tab-accepts', async () => {
    const before = await visibleText();
    await page.keyboard.press('Tab');
    await page.waitForFunction(
      (old) => document.querySelector('.monaco-editor .view-lines')?.innerText !== old,
      before,
      { timeout: 10000 },
    );
    return visibleText();
  });

  seen.statusHover = await step('status-hover', async () => {
    await page.mouse.move(10, 500);
    await page.locator('[id="status.languageStatus"]').first().hover();
    const hover = page.locator('.hover-language-status', { hasText: 'qwen-lsp' }).first();
    await hover.waitFor({ timeout: 10000 });
    // What the user needs must be on screen: our row's Stats link and its pin button.
    const box = async (locator) => (await locator.count()) ? locator.first().boundingBox() : null;
    const row = page.locator('.hover-language-status', { hasText: 'qwen-lsp' }).first();
    const link = await box(row.locator('a', { hasText: 'Stats' }));
    const pin = await box(row.locator('.codicon-pin'));
    const inside = (b) => b !== null && b.width > 0 && b.height > 0 && b.x >= 0 && b.x + b.width <= 1600 && b.y >= 0 && b.y + b.height <= 1000;
    seen.statsLinkVisible = inside(link);
    seen.pinVisible = inside(pin);
    const text = await row.innerText();
    await page.mouse.move(10, 500);
    return text;
  });

  seen.stats = await step('show-stats', async () => {
    await runCommand('qwen-lsp: Show Stats');
    await page.locator('.tab.active', { hasText: 'stats.json' }).waitFor({ timeout: 15000 });
    await page.waitForFunction(() => /"requests"/.test(document.querySelector('.editor-group-container.active .view-lines')?.textContent ?? ''), undefined, { timeout: 15000 });
    return page.locator('.editor-group-container.active .view-lines').first().innerText();
  });

  seen.toggled = await step('toggle', async () => {
    // Back to the project file: the status item is the one of the active file's language.
    await page.locator('.tab', { hasText: path.basename(config.file) }).first().click();
    await runCommand('qwen-lsp: Toggle Inline Completions');
    await page.waitForFunction(() => /qwen-lsp: paused/.test(document.getElementById('status.languageStatus')?.getAttribute('aria-label') ?? ''), undefined, { timeout: 10000 });
    const paused = await languageStatus();
    await runCommand('qwen-lsp: Toggle Inline Completions');
    await page.waitForFunction(() => /qwen-lsp: ready/.test(document.getElementById('status.languageStatus')?.getAttribute('aria-label') ?? ''), undefined, { timeout: 10000 });
    return paused;
  });

  seen.restart = await step('restart', async () => {
    await runCommand('qwen-lsp: Restart Server');
    await page.waitForTimeout(1000);
    await page.waitForFunction(() => /qwen-lsp: ready/.test(document.getElementById('status.languageStatus')?.getAttribute('aria-label') ?? ''), undefined, { timeout: 60000 });
    return languageStatus();
  });

  seen.codeAction = await step('code-action', async () => {
    await page.locator('.tab', { hasText: path.basename(config.file) }).first().click();
    // On the definition's line (found by its text: the accepted suggestion moved it).
    await page.locator('.monaco-editor .view-line', { hasText: config.actionLineText }).first().click();
    await page.keyboard.press('End');
    const wanted = page.locator('.action-widget .monaco-list-row', { hasText: config.action });
    for (let i = 0; i < 20 && !(await wanted.count()); i += 1) {
      await page.keyboard.press('Escape');
      await page.keyboard.press(`${mod}+.`);
      await wanted.first().waitFor({ timeout: 1500 }).catch(() => undefined);
    }
    const titles = await page.locator('.action-widget .monaco-list-row').allInnerTexts();
    // The keyboard, as the list's overlay takes the clicks: down to the action, Enter.
    for (let i = 0; i < 8 && !(await page.locator('.action-widget .monaco-list-row.focused', { hasText: config.action }).count()); i += 1) {
      await page.keyboard.press('ArrowDown');
    }
    const before = await visibleText();
    await page.keyboard.press('Enter');
    // The model runs now, with progress the user can cancel; then the edit, or a message
    // that says why nothing changed (a tiny random model rarely writes a whole function).
    const progress = page.locator('.notification-toast', { hasText: config.action });
    seen.progressShown = await progress.first().waitFor({ timeout: 5000 }).then(() => true, () => false);
    seen.progressCancellable = seen.progressShown && (await progress.first().locator('.codicon-notifications-clear, a[aria-label*="Cancel"], .monaco-button', { hasText: /Cancel/ }).count()) > 0;
    await page.waitForFunction(
      (old) => document.querySelector('.monaco-editor .view-lines')?.innerText !== old ||
        [...document.querySelectorAll('.notification-toast')].some((t) => /qwen-lsp: (the rewrite|nothing|no )/i.test(t.textContent ?? '')),
      before,
      { timeout: 60000 },
    );
    return { titles, after: await visibleText(), notifications: await notifications() };
  });

  seen.settingsFile = await step('settings-json', async () => {
    // VS Code's own settings are not code to complete.
    await runCommand('Preferences: Open User Settings (JSON)');
    await page.locator('.tab.active', { hasText: 'settings.json' }).waitFor({ timeout: 15000 });
    await page.keyboard.press(`${mod}+End`);
    await page.keyboard.press('ArrowUp');
    await page.keyboard.press('End');
    await page.keyboard.type(',\n"editor.fontSize": ', { delay: 60 });
    await page.waitForTimeout(4000);
    return ghostText();
  });

  seen.finalStatus = await page.locator('.statusbar').innerText();
  seen.notifications = await notifications();
  process.stdout.write(JSON.stringify(seen));
  await browser.close();
} catch (error) {
  seen.error = String(error.message ?? error);
  seen.notifications = await notifications().catch(() => []);
  process.stdout.write(JSON.stringify(seen));
  await browser.close();
  process.exit(1);
}
