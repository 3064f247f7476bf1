// Drives Debian's firefox-esr over WebDriver BiDi for tests/browser/engines.py: one JSON
// command per line on stdin ({id, op, ...}), one JSON answer per line on stdout
// ({id, value} or {id, error}); `fresh` opens a page in a new browser context. Usage:
// node firefox.mjs /usr/bin/firefox-esr PROFILE_DIR
import { createInterface } from "node:readline";
import puppeteer from "puppeteer-core";

const [executablePath, userDataDir] = process.argv.slice(2);
const browser = await puppeteer.launch({
  browser: "firefox",
  executablePath,
  userDataDir,
  headless: true,
  // Service workers on http://127.0.0.1 as in a normal profile; no updates, no telemetry.
  extraPrefsFirefox: {
    "dom.serviceWorkers.enabled": true,
    "app.update.enabled": false,
    "datareporting.policy.dataSubmissionEnabled": false,
  },
});
// One browser context per test: its own cookies, storage and service workers.
let context = null;
let page = null;
let errors = [];
async function release() {
  if (context) await context.close();
  context = page = null;
}

const ops = {
  fresh: async ({ width, height }) => {
    await release();
    context = await browser.createBrowserContext();
    page = await context.newPage();
    errors = [];
    page.on("console", (msg) => msg.type() === "error" && errors.push(msg.text()));
    page.on("pageerror", (err) => errors.push(`uncaught: ${err.message || err}`));
    await page.setViewport({ width, height });
  },
  release,
  goto: async ({ url }) => { await page.goto(url, { waitUntil: "load" }); },
  eval: ({ expr }) => page.evaluate(expr),
  fill: ({ selector, text }) => page.locator(selector).fill(text),
  click: ({ selector }) => page.locator(selector).click(),
  offline: ({ on }) => page.setOfflineMode(on),
  errors: () => errors.splice(0),
  quit: async () => { await browser.close(); process.exit(0); },
};

const send = (answer) => process.stdout.write(JSON.stringify(answer) + "\n");
send({ id: 0, value: await browser.version() });
for await (const line of createInterface({ input: process.stdin })) {
  const { id, op, ...args } = JSON.parse(line);
  try {
    const value = await ops[op](args);
    send({ id, value: value === undefined ? null : value });
  } catch (err) {
    send({ id, error: String((err && err.message) || err) });
  }
}
await browser.close();
