// A person editing a long file in a real VS Code (code-server in headless Chromium, driven
// by playwright-core): open the file, wait for the model, then a list of phases, each a
// move (go to a line, or the top) and keystrokes typed one by one, as in
// bench/vscode_session.py: type in one place, jump far away and type, add an import at
// the top, go back and type.
//
//   node session.mjs CONFIG.json
//
// CONFIG: { url, chromium, playwright, artifacts, file (relative to the workspace),
// settleMs (idle time after "ready"), phases: [{ name, line (1-based; 1 with top: true is
// the file's first line), top, newLine (open a line below it), text, delayMs, waitMs }] }.
// Prints one JSON object: per phase its start and end (epoch ms), when its last key was
// typed and how long after it the ghost text showed (null: none within waitMs).
import { createRequire } from 'node:module';
import * as fs from 'node:fs';
import * as path from 'node:path';

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const require = createRequire(path.join(config.playwright, 'package.json'));
const { chromium } = require(config.playwright);
const mod = process.platform === 'darwin' ? 'Meta' : 'Control';
const GHOST = '.monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text';

const browser = await chromium.launch({
  executablePath: config.chromium,
  headless: true,
  args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
});
const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
const seen = { phases: [] };

async function ghostText() {
  const ghosts = page.locator(GHOST);
  const parts = [];
  for (let i = 0; i < (await ghosts.count()); i += 1) {
    parts.push(await ghosts.nth(i).innerText());
  }
  return parts.join('\n');
}

async function goTo(line) {
  await page.keyboard.press(`${mod}+G`);
  await page.keyboard.type(String(line));
  await page.keyboard.press('Enter');
}

try {
  await page.goto(config.url);
  await page.locator('.monaco-workbench').waitFor({ timeout: 60000 });
  await page.locator('.explorer-folders-view, .explorer-viewlet').first().waitFor({ timeout: 60000 });
  // Quick Open, as a person opens a file they know.
  await page.keyboard.press(`${mod}+P`);
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible' });
  await input.fill(config.file);
  await page.locator('.quick-input-list .monaco-list-row', { hasText: path.basename(config.file) }).first().waitFor({ timeout: 30000 });
  await page.keyboard.press('Enter');
  await page.locator('.tab', { hasText: path.basename(config.file) }).first().waitFor({ timeout: 30000 });
  await page.locator('.monaco-editor .view-lines').first().click();
  seen.opened = Date.now();
  await page.waitForFunction(
    () => /qwen-lsp: ready/.test(document.getElementById('status.languageStatus')?.getAttribute('aria-label') ?? ''),
    undefined,
    { timeout: 300000 },
  );
  seen.ready = Date.now();
  await page.waitForTimeout(config.settleMs ?? 0);

  for (const phase of config.phases) {
    const record = { name: phase.name, start: Date.now() };
    await page.keyboard.press('Escape'); // no suggestion left from the phase before
    if (phase.top) {
      await page.keyboard.press(`${mod}+Home`);
    } else {
      await goTo(phase.line);
      await page.keyboard.press('End');
    }
    if (phase.newLine) {
      await page.keyboard.press('Enter');
    }
    for (const ch of phase.text) {
      if (ch === '\n') {
        // A new line, not the word suggestion VS Code may have opened (Enter accepts it).
        await page.keyboard.press('Escape');
        await page.keyboard.press('Enter');
      } else {
        await page.keyboard.type(ch);
      }
      await page.waitForTimeout(phase.delayMs ?? 300);
    }
    record.lastKey = Date.now();
    record.ghostMs = await page
      .locator(GHOST)
      .first()
      .waitFor({ timeout: phase.waitMs ?? 30000 })
      .then(() => Date.now() - record.lastKey, () => null);
    record.ghost = record.ghostMs === null ? '' : await ghostText();
    // Whatever is still on its way is logged before the next phase moves on.
    await page.waitForTimeout(phase.afterMs ?? 2000);
    record.end = Date.now();
    seen.phases.push(record);
  }
  await page.screenshot({ path: path.join(config.artifacts, 'end.png') }).catch(() => undefined);
  process.stdout.write(JSON.stringify(seen));
  await browser.close();
} catch (error) {
  await page.screenshot({ path: path.join(config.artifacts, 'FAILED.png') }).catch(() => undefined);
  seen.error = String(error.message ?? error);
  process.stdout.write(JSON.stringify(seen));
  await browser.close();
  process.exit(1);
}
