// Opens the meshtwin UI with Debian's Chromium after a fault was replayed:
// the anomalies list shows the faulty service's alarms, and clicking one
// selects that service; picking the incident shows its details and marks
// the service on the graph, its ranked causes, the top cause's
// propagation path highlighted, and an exemplar trace that opens in the
// waterfall. Writes a screenshot (of the incident) and prints a JSON summary.
//
// Usage: node ui_anomalies.mjs URL SCREENSHOT SUBJECT_ID INCIDENT_ID

import { chromium } from "playwright-core";

const [url, screenshot, subject, incidentId] = process.argv.slice(2);
const TIMEOUT = 15000;
// Ranking reads both windows from the store: slower in a debug build on a
// busy machine; a bound against hanging, not a speed check.
const RANKING_TIMEOUT = 90000;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  const errors = [];
  page.on("pageerror", (error) => errors.push(String(error)));
  await page.goto(url);
  const rowSelector = `#anomalies tbody tr[data-subject="${subject}"][data-signal="error_rate"]`;
  await page.waitForSelector(rowSelector, { timeout: TIMEOUT });
  const rows = await page.locator("#anomalies tbody tr").count();
  const subjectRows = await page.locator(`#anomalies tbody tr[data-subject="${subject}"]`).count();
  const text = (await page.locator(rowSelector).first().textContent()).trim();
  const emptyHintHidden = await page.locator("#anomalies-empty").isHidden();
  await page.locator(rowSelector).first().click();
  await page.waitForFunction((id) => window.meshtwin.cy.getElementById(id).selected(), subject, { timeout: TIMEOUT });
  const heading = (await page.textContent("#details h2")).trim();
  await page.click(`#incidents tbody tr[data-incident="${incidentId}"]`, { timeout: TIMEOUT });
  await page.waitForFunction((id) => document.querySelector("#details h2")?.textContent === `Incident #${id}`, incidentId, {
    timeout: TIMEOUT,
  });
  const incidentHeading = (await page.textContent("#details h2")).trim();
  const incidentMarksCart = await page.evaluate((id) => window.meshtwin.cy.getElementById(id).data("incident") === true, subject);
  await page.waitForSelector("#causes li.cause", { timeout: RANKING_TIMEOUT });
  const causes = await page.locator("#causes li.cause").evaluateAll((items) =>
    items.map((item) => ({
      service: item.dataset.service,
      picked: item.classList.contains("picked"),
      text: item.textContent,
      alarms: item.querySelector(".cause-alarms")?.textContent,
      traces: [...item.querySelectorAll(".cause-traces a")].map((a) => a.title),
    })),
  );
  const pathMarksCart = await page.evaluate((id) => window.meshtwin.cy.getElementById(id).data("path") === true, subject);
  const pathEdges = await page.evaluate(() => window.meshtwin.cy.edges("[?path]").map((e) => e.id()));
  await page.screenshot({ path: screenshot });
  let exemplarOpened = null;
  const exemplar = causes[0]?.traces[0];
  if (exemplar) {
    await page.click(`#causes .cause-traces a[title="${exemplar}"]`);
    await page.waitForFunction((id) => location.hash === `#trace=${id}` && document.querySelector("#waterfall")?.textContent.includes("cart"), exemplar, {
      timeout: TIMEOUT,
    });
    exemplarOpened = exemplar;
  }
  console.log(
    JSON.stringify({
      rows,
      subject_rows: subjectRows,
      text,
      empty_hint_hidden: emptyHintHidden,
      heading,
      incident_heading: incidentHeading,
      incident_marks_cart: incidentMarksCart,
      causes,
      path_marks_cart: pathMarksCart,
      path_edges: pathEdges,
      exemplar_opened: exemplarOpened,
      errors,
    }),
  );
} finally {
  await browser.close();
}
