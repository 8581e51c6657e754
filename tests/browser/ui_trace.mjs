// Opens a trace's waterfall in the meshtwin UI with Debian's Chromium:
// first from the address (#trace=ID), then from the live graph (select
// the gateway → orders edge, "traces on this edge", pick the trace).
// Writes a screenshot and prints a JSON summary of what the page showed.
//
// Usage: node ui_trace.mjs URL SCREENSHOT TRACE_ID

import { chromium } from "playwright-core";

const [url, screenshot, traceId] = process.argv.slice(2);
const TIMEOUT = 15000;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  const errors = [];
  page.on("pageerror", (error) => errors.push(String(error)));

  // 1. From the address.
  await page.goto(`${url}#trace=${traceId}`);
  await page.waitForSelector(".wf-span", { timeout: TIMEOUT });
  const rows = await page.$$eval(".wf-span .wf-label", (labels) => labels.map((l) => l.textContent.trim()));
  const critical = await page.$$eval(".wf-span.critical .wf-label", (labels) => labels.map((l) => l.textContent.trim()));
  const errorRows = await page.$$eval(".wf-span.error .wf-label", (labels) => labels.map((l) => l.textContent.trim()));
  const segments = await page.locator(".wf-critical").count();
  await page.locator(".wf-span.error").click();
  const details = await page
    .locator(".span-details tr", { hasText: "status" })
    .first()
    .textContent();

  // 2. From the graph: the edge, its traces, the trace.
  await page.click("#traces-close");
  await page.waitForFunction(
    () => {
      const m = window.meshtwin;
      if (!m?.cy) return false;
      const names = new Map([...m.stream.nodes.values()].map((n) => [n.id, n.name]));
      const edge = m.cy.edges().filter((e) => names.get(e.data("source")) === "gateway" && names.get(e.data("target")) === "orders");
      if (edge.empty()) return false;
      m.cy.$(":selected").unselect();
      edge.select();
      edge.emit("tap");
      return true;
    },
    null,
    { timeout: TIMEOUT, polling: 200 },
  );
  await page.click("#traces-on-edge", { timeout: TIMEOUT });
  await page.waitForSelector(`#trace-results tbody tr[data-trace-id="${traceId}"]`, { timeout: TIMEOUT });
  const edgeResults = await page.locator("#trace-results tbody tr").count();
  await page.evaluate(() => history.replaceState(null, "", location.pathname));
  await page.click(`#trace-results tbody tr[data-trace-id="${traceId}"]`);
  await page.waitForFunction((id) => document.querySelector(".trace-id")?.textContent === id, traceId, {
    timeout: TIMEOUT,
  });
  const reopened = await page.textContent(".trace-id");
  await page.locator(".wf-span.critical").nth(3).click();
  await page.screenshot({ path: screenshot });
  console.log(
    JSON.stringify({
      rows,
      critical,
      error_rows: errorRows,
      segments,
      details: details.split(": ").pop().trim(),
      edge_results: edgeResults,
      reopened,
      errors,
    }),
  );
} finally {
  await browser.close();
}
