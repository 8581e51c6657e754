// Opens the meshtwin UI in Debian's Chromium and waits until every expected
// node is drawn: present in the cytoscape graph, visible, with a non-empty
// box inside the canvas. Then checks the graph updates live (the stream's
// version moves without a reload), writes a screenshot, and prints a JSON
// summary on stdout.
//
// Usage: node ui_graph.mjs URL SCREENSHOT NAMES_JSON DEADLINE_MS

import { chromium } from "playwright-core";

const [url, screenshot, namesJson, deadlineMs] = process.argv.slice(2);
const names = JSON.parse(namesJson);
const deadline = Number(deadlineMs);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
try {
  const page = await browser.newPage({ viewport: { width: 1600, height: 900 } });
  const errors = [];
  page.on("pageerror", (error) => errors.push(String(error)));
  const started = Date.now();
  await page.goto(url);
  const handle = await page.waitForFunction(
    (expected) => {
      const cy = window.meshtwin?.cy;
      if (!cy) return false;
      const drawn = expected.filter((name) => {
        const node = cy.nodes().filter((n) => n.data("name") === name);
        if (node.empty() || !node.visible()) return false;
        const box = node.renderedBoundingBox();
        return box.w > 0 && box.h > 0 && box.x1 >= 0 && box.y1 >= 0 && box.x2 <= cy.width() && box.y2 <= cy.height();
      });
      return drawn.length === expected.length ? drawn : false;
    },
    names,
    { timeout: deadline, polling: 100 },
  );
  const drawnMs = Date.now() - started;
  const drawn = await handle.jsonValue();

  // Live: the version moves on without a reload.
  const firstVersion = await page.evaluate(() => window.meshtwin.stream.version);
  await page.waitForFunction((v) => window.meshtwin.stream.version > v, firstVersion, { timeout: 5000, polling: 100 });
  const laterVersion = await page.evaluate(() => window.meshtwin.stream.version);

  const listed = await page.$$eval("#services tbody tr td:first-child", (cells) => cells.map((c) => c.textContent));
  const status = await page.textContent("#status");
  const edges = await page.evaluate(() => window.meshtwin.cy.edges().length);
  await page.screenshot({ path: screenshot });
  console.log(JSON.stringify({ drawn, drawn_ms: drawnMs, listed, status, edges, versions: [firstVersion, laterVersion], errors }));
} finally {
  await browser.close();
}
