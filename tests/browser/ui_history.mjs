// Time travel in the meshtwin UI with Debian's Chromium: moves the time
// slider back to BEFORE (Unix ns), reads the graph drawn, opens the diff
// view against now and reads each element's colour class, writes a
// screenshot, goes live again. Prints a JSON summary.
//
// Usage: node ui_history.mjs URL SCREENSHOT BEFORE_UNIX_NANOS

import { chromium } from "playwright-core";

const [url, screenshot, beforeNanos] = process.argv.slice(2);
const TIMEOUT = 15000;
const VERDICTS = ["appeared", "vanished", "degraded", "improved", "surged"];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync"],
});
const names = () => window.meshtwin.cy.nodes().map((n) => n.data("name")).sort();
try {
  const page = await browser.newPage({ viewport: { width: 1600, height: 900 } });
  const errors = [];
  page.on("pageerror", (error) => errors.push(String(error)));
  await page.goto(url);
  await page.waitForFunction(
    () => window.meshtwin?.cy.nodes().some((n) => n.data("name") === "payments") && !document.getElementById("time-slider").disabled,
    null,
    { timeout: TIMEOUT, polling: 100 },
  );
  const liveNodes = await page.evaluate(names);

  // Drag the slider back: the graph as it was.
  await page.evaluate((seconds) => {
    const slider = document.getElementById("time-slider");
    slider.value = String(seconds);
    slider.dispatchEvent(new Event("input"));
    slider.dispatchEvent(new Event("change"));
  }, Number(beforeNanos) / 1e9);
  await page.waitForFunction(
    () => document.body.dataset.mode === "past" && document.getElementById("mode-text").textContent.startsWith("the graph at"),
    null,
    { timeout: TIMEOUT, polling: 100 },
  );
  await page.waitForFunction(() => !window.meshtwin.cy.nodes().some((n) => n.data("name") === "payments"), null, {
    timeout: TIMEOUT,
    polling: 100,
  });
  const pastNodes = await page.evaluate(names);

  // The diff against now.
  await page.click("#diff-toggle");
  await page.waitForFunction(() => document.body.dataset.mode === "diff" && !document.getElementById("changes").hidden, null, {
    timeout: TIMEOUT,
    polling: 100,
  });
  const diff = await page.evaluate((verdicts) => {
    const marked = {};
    for (const element of window.meshtwin.cy.elements()) {
      const found = verdicts.filter((v) => element.hasClass(v));
      if (found.length > 0) marked[element.id()] = found.join(" ");
    }
    return marked;
  }, VERDICTS);
  const changes = await page.$$eval("#changes-list li", (items) => items.map((li) => li.textContent));
  await page.screenshot({ path: screenshot });

  // Back to live.
  await page.click("#live");
  await page.waitForFunction(() => document.body.dataset.mode === "live" && window.meshtwin.cy.nodes().some((n) => n.data("name") === "payments"), null, {
    timeout: TIMEOUT,
    polling: 100,
  });
  const backToLive = await page.evaluate(names);
  const marksLeft = await page.evaluate(
    (verdicts) => window.meshtwin.cy.elements().filter((e) => verdicts.some((v) => e.hasClass(v))).length,
    VERDICTS,
  );
  console.log(
    JSON.stringify({ live_nodes: liveNodes, past_nodes: pastNodes, diff, changes, back_to_live: backToLive, marks_left: marksLeft, errors }),
  );
} finally {
  await browser.close();
}
