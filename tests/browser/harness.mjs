// Shared by the page test and the benchmark: the dev server and Debian's Chromium with the
// flags committed in lab-wasm/webdriver.json (the same ones the wasm-bindgen tests use).
import { spawn } from 'node:child_process';
import { readFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export async function startServer() {
  const server = spawn('python3', [path.join(root, 'scripts/serve-www.py'), '--port', '0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise((resolve, reject) => {
    server.on('exit', (code) => reject(new Error(`serve-www.py exited with ${code}`)));
    server.stdout.on('data', (chunk) => {
      const match = /http:\/\/[\d.]+:\d+\//.exec(chunk.toString());
      if (match) resolve(match[0]);
    });
  });
  return { url, stop: () => server.kill() };
}

export function chromiumFlags() {
  const config = JSON.parse(readFileSync(path.join(root, 'lab-wasm/webdriver.json'), 'utf8'));
  const options = config['goog:chromeOptions'];
  return { binary: options.binary, args: options.args.filter((a) => !a.startsWith('--headless')) };
}

export async function launch() {
  const { binary, args } = chromiumFlags();
  const userDataDir = mkdtempSync(path.join(tmpdir(), 'lth-chromium-'));
  return chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM ?? binary,
    headless: true,
    args,
    viewport: { width: 1280, height: 1400 },
  });
}
