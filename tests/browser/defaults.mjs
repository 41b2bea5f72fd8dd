// How long the page's default experiment takes (what a first-time visitor gets by pressing
// Run): headless Chromium, the backend given (default cpu), timed from the click to "done".
//   node defaults.mjs [cpu|auto|webgpu]        needs www/pkg (scripts/build-www.sh)
import { launch, startServer } from './harness.mjs';

const backend = process.argv[2] ?? 'cpu';
const server = await startServer();
const context = await launch();
const page = context.pages()[0] ?? await context.newPage();
page.on('pageerror', (e) => console.error(`pageerror: ${e.message}`));
try {
  await page.goto(`${server.url}?test&backend=${backend}`);
  await page.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.state), null, { timeout: 300_000 });
  const form = await page.evaluate(() => Object.fromEntries(new FormData(document.getElementById('experiment'))));
  const started = Date.now();
  await page.click('#run');
  await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state), null, { timeout: 1_800_000 });
  const seconds = (Date.now() - started) / 1000;
  const report = await page.evaluate(() => window.lth.report);
  const last = report.rounds.at(-1);
  console.log(`page defaults ${JSON.stringify(form)}`);
  console.log(`on ${await page.textContent('#backend')}: ${seconds.toFixed(1)} s for ${report.rounds.length} rounds` +
    ` + ${Object.keys(report.controls).join(', ') || 'no'} control; last round ${(100 * last.weights_remaining).toFixed(1)}%` +
    ` of weights, test accuracy ${(100 * last.test_accuracy).toFixed(2)}%`);
  console.log(await page.textContent('#status'));
} finally {
  await context.close();
  server.stop();
}
