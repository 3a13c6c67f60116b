// Drives the atlas serve page in a real headless Chromium (playwright-core, the Debian chromium):
// loads it, types a text, switches layer and head and sees the figure change, hovers a heatmap
// cell, clicks a token, exports a PNG at 300 dpi. Usage: node serve.mjs URL OUT_DIR [SCREENSHOT.png]
// Exit 0 when every check passes; prints "ok - ..." / "FAIL - ..." lines.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

const [url, outDir, screenshot] = process.argv.slice(2);
let failures = 0;
const ok = (name) => console.log(`ok   - ${name}`);
const fail = (name) => { failures++; console.log(`FAIL - ${name}`); };
const check = (cond, name) => (cond ? ok(name) : fail(name));

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-dev-shm-usage'],
});
try {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1500, height: 1000 } });
  const page = await context.newPage();
  const foreign = [];
  const consoleErrors = [];
  page.on('request', (r) => { if (!r.url().startsWith(url)) foreign.push(r.url()); });
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));

  const renders = () => page.$eval('#figure', (f) => Number(f.dataset.renders));
  const svgText = () => page.$eval('#figure', (f) => f.innerHTML);
  const waitRender = async (after, what) => {
    await page.waitForFunction((n) => Number(document.querySelector('#figure').dataset.renders) > n &&
      !document.querySelector('#figure').classList.contains('busy'), after, { timeout: 30000 });
    ok(`figure re-rendered after ${what}`);
  };

  await page.goto(url);
  await page.waitForFunction(() => Number(document.querySelector('#figure').dataset.renders) >= 1 &&
    document.querySelector('#figure svg'), null, { timeout: 30000 });
  ok('page loads and shows a figure');
  check((await page.$$eval('#model option', (o) => o.map((x) => x.value))).includes('stories260K'), 'model selector lists stories260K');

  let n = await renders();
  await page.fill('#text', 'Tom saw a big dog in the park. He ran home to his mother.');
  await waitRender(n, 'typing a text');
  const tokens = await page.$$eval('#tokens span', (s) => s.map((x) => x.textContent));
  check(tokens.join('').includes('Tom saw a big dog') && tokens.join('').includes('mother'), `token strip shows the new text (${tokens.length} tokens)`);
  const before = await svgText();

  n = await renders();
  await page.selectOption('#layer', '3');
  await waitRender(n, 'choosing layer 3');
  const afterLayer = await svgText();
  check(afterLayer !== before, 'layer 3 draws a different figure');
  check((await page.textContent('#cmd-visualize')).includes('--layer 3'), 'the command line shows --layer 3');

  n = await renders();
  await page.selectOption('#head', '2');
  await waitRender(n, 'choosing head 2');
  const afterHead = await svgText();
  check(afterHead !== afterLayer, 'head 2 draws a different figure');
  check((await page.textContent('#cmd-visualize')).includes('--layer 3 --head 2'), 'the command line shows --layer 3 --head 2');

  // Hover the middle of the heatmap: a tooltip names the token pair and the value.
  const box = await page.$eval('#figure svg', (s) => { const r = s.getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; });
  await page.mouse.move(box[0] + box[2] * 0.5, box[1] + box[3] * 0.55);
  await page.waitForTimeout(200);
  const tip = await page.$eval('#tooltip', (t) => (t.hidden ? '' : t.textContent));
  check(/→.*(\d\.\d{4}|masked)/.test(tip), `hovering a heatmap cell shows the pair and value ('${tip}')`);

  // The cell in the last row, first column, found the way the page finds the heatmap's cells (its
  // stroked pieces up to 64 x 64 cells, a scaled image above): its tooltip names that pair and value.
  const hoverCorner = async (want, what) => {
    const cell = await page.evaluate(() => {
      const svg = document.querySelector('#figure svg');
      const c = heatmapCells(svg);
      if (!c) return null;
      const pt = svg.createSVGPoint();
      pt.x = c.x0 + 0.5 * c.size; pt.y = c.y0 + (c.n - 0.5) * c.size;
      const p = pt.matrixTransform(svg.getScreenCTM());
      const i = c.visible[c.n - 1], j = c.visible[0];
      return { x: p.x, y: p.y, n: c.n, want: `${st.run.tokens[i]} → ${st.run.tokens[j]}: ${st.run.attention[i][j].toFixed(4)}` };
    });
    check(cell && cell.n === want, `the page finds the ${what} heatmap's ${want} x ${want} cells (${cell && cell.n})`);
    if (!cell) return;
    await page.mouse.move(cell.x, cell.y);
    await page.waitForTimeout(200);
    const tip = await page.$eval('#tooltip', (t) => (t.hidden ? '' : t.textContent));
    check(tip === cell.want, `hovering its last row's first cell shows '${cell.want}' ('${tip}')`);
  };
  await hoverCorner(tokens.length, 'vector');

  // The heads table and the next-token panel are filled.
  await page.waitForSelector('#heads td', { timeout: 30000 });
  check((await page.$$('#heads td')).length === 5 * 8, 'heads table has 5 x 8 cells');
  // Its metrics are those of `atlas analyze heads`: switching the metric redraws the cells.
  const cellsOf = () => page.$$eval('#heads td', (t) => t.map((x) => x.textContent).join(' '));
  const headsBefore = await cellsOf();
  await page.selectOption('#metric', 'function_mass');
  await page.waitForTimeout(100);
  check((await cellsOf()) !== headsBefore && (await page.$$('#heads td')).length === 5 * 8,
        'heads table shows another analyze-heads metric (function_mass)');
  check((await page.textContent('#heads-command')).startsWith('atlas analyze heads '), 'heads table names its analyze heads command');
  check((await page.$$('#next tbody tr')).length === 10, 'next-token panel lists 10 candidates');

  // Word level: the strip and the matrix hold words; the process step is shown.
  n = await renders();
  await page.selectOption('#level', 'word');
  await waitRender(n, 'switching to word level');
  const words = await page.$$eval('#tokens span', (s) => s.map((x) => x.textContent));
  check(words.includes('mother.') && words.includes('Tom'), `word level shows words (${words.slice(0, 6).join('|')} …)`);
  check((await page.textContent('#cmd-process')).includes('atlas process words attention.npz -o words.npz'), 'word level shows the process command');
  n = await renders();
  await page.click('button[data-kind="rollout"]');
  await waitRender(n, 'choosing rollout');
  check((await page.textContent('#cmd-visualize')).includes('rollout.npz'), 'rollout view renders rollout.npz');
  n = await renders();
  await page.selectOption('#level', 'token');
  await page.click('button[data-kind="heatmap"]');
  await waitRender(n, 'back to tokens');

  // Click a token: the head view focuses its links.
  n = await renders();
  await page.click('#tokens span[data-index="3"]');
  await waitRender(n, 'clicking token 3');
  check(await page.$eval('#figure', (f) => f.dataset.kind) === 'flow', 'clicking a token switches to the head view');
  check((await page.textContent('#cmd-visualize')).includes('--focus 3'), 'the head view focuses token 3 (--focus 3)');
  check(await page.$eval('#tokens span[data-index="3"]', (s) => s.classList.contains('focus')), 'token 3 is marked');

  // Export PNGs at 300 and 150 dpi: the same figure, half the pixels across.
  const exportPng = async (dpi) => {
    const [download] = await Promise.all([
      page.waitForEvent('download', { timeout: 30000 }),
      page.click(`button[data-export="png"][data-dpi="${dpi}"]`),
    ]);
    const file = path.join(outDir, `export-${dpi}.png`);
    await download.saveAs(file);
    const png = fs.readFileSync(file);
    const isPng = png.length > 24 && png.toString('latin1', 1, 4) === 'PNG';
    return { size: png.length, isPng, width: isPng ? png.readUInt32BE(16) : 0, name: download.suggestedFilename() };
  };
  const p300 = await exportPng(300);
  check(p300.isPng && p300.size > 20000 && p300.name === 'flow.png', `PNG export at 300 dpi downloads (${p300.size} bytes, ${p300.name}, ${p300.width} px)`);
  const p150 = await exportPng(150);
  check(p150.isPng && Math.abs(p300.width - 2 * p150.width) <= 1 && p150.width > 300,
        `PNG export at 150 dpi is half as wide (${p150.width} px vs ${p300.width} px)`);

  // Gender swap: the counterfactual contrast.
  n = await renders();
  await page.click('#swap-run');
  await waitRender(n, 'the gender swap');
  check((await page.textContent('#swap-out')).includes('She ran home to her father'), 'gender swap shows the swapped text');
  check(await page.$eval('#figure', (f) => f.dataset.kind) === 'contrast', 'gender swap shows the contrast figure');

  if (screenshot) {
    n = await renders();
    await page.click('button[data-kind="heatmap"]');
    await waitRender(n, 'back to the heatmap');
    await page.mouse.move(box[0] + box[2] * 0.45, box[1] + box[3] * 0.5);
    await page.waitForTimeout(200);
    await page.screenshot({ path: screenshot, fullPage: true });
    ok(`screenshot ${screenshot}`);
  }
  // A text over 64 tokens: the heatmap's cells are one image, and hovering still finds them.
  n = await renders();
  await page.click('button[data-kind="heatmap"]');
  await page.fill('#text', 'Tom saw a big dog in the park and the dog ran home. '.repeat(6));
  await page.waitForFunction(() => document.querySelectorAll('#tokens span').length > 64 &&
    !document.querySelector('#figure').classList.contains('busy') &&
    [...document.querySelectorAll('#figure svg image')].some((i) => Number(i.getAttribute('width')) > 64),
    null, { timeout: 30000 });
  await hoverCorner(await page.$$eval('#tokens span', (s) => s.length), 'raster');

  check(foreign.length === 0, `no request leaves the server (${foreign.slice(0, 3).join(', ')})`);
  check(consoleErrors.length === 0, `no console errors (${consoleErrors.slice(0, 3).join(' | ')})`);
} catch (err) {
  fail(`unexpected: ${err.stack || err}`);
} finally {
  await browser.close();
}
process.exit(failures ? 1 : 0);
