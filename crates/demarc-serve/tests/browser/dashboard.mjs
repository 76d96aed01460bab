// The `demarc serve` dashboard in a real browser: Debian's Chromium driven by playwright-core.
// Started by run.sh, which seeds a store, starts the server and sets:
//   BASE_URL, VIEWER_TOKEN, AUDITOR_TOKEN, ADMIN_TOKEN, SHOTS_DIR
//   CHROMIUM (default /usr/bin/chromium), BROWSER_NODE_DIR (where playwright-core is installed)
// Prints one line per check; exits 1 when any check failed.
import { createRequire } from "node:module";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

// playwright-core is installed outside the source tree (run.sh); ES modules ignore NODE_PATH,
// so it is resolved as CommonJS from there.
const nodeDir = process.env.BROWSER_NODE_DIR;
const require = createRequire(nodeDir ? join(nodeDir, "package.json") : import.meta.url);
const { chromium } = require("playwright-core");

function env(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`dashboard.mjs: ${name} is not set (run it through run.sh)`);
    process.exit(2);
  }
  return v;
}
const BASE = env("BASE_URL").replace(/\/$/, "");
const TOKENS = { viewer: env("VIEWER_TOKEN"), auditor: env("AUDITOR_TOKEN"), admin: env("ADMIN_TOKEN") };
const SHOTS = env("SHOTS_DIR");
mkdirSync(SHOTS, { recursive: true });

const DESKTOP = { viewport: { width: 1280, height: 900 } };
const PHONE = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };

// --- reporting -----------------------------------------------------------------------------

const failures = [];
const notes = new Set();
let passed = 0;
function pass(name, detail = "") {
  passed += 1;
  console.log(`ok    ${name}${detail ? ` (${detail})` : ""}`);
}
function fail(name, why) {
  failures.push(`${name}: ${why}`);
  console.log(`FAIL  ${name}: ${why}`);
}
function check(name, ok, why, detail = "") {
  if (ok) pass(name, detail);
  else fail(name, why);
  return ok;
}
// Runs one check; an exception (a timeout, a missing element) fails it with its message.
async function step(name, body) {
  try {
    await body();
  } catch (e) {
    fail(name, (e && e.message ? e.message : String(e)).split("\n")[0]);
  }
}

// The CLI's self-contained reports (STATIC_REPORTS): readable at phone width without the page
// scrolling sideways (wide tables scroll in their own box), and, printed, every matrix cell
// shows its citation.
async function staticReports() {
  const dir = process.env.STATIC_REPORTS;
  if (!dir) return;
  const context = await browser.newContext(PHONE);
  const page = await context.newPage();
  for (const name of ["assessment", "matrix", "matrix-wide"]) {
    const label = `static report ${name}.html at phone width`;
    await step(label, async () => {
      await page.goto(`file://${dir}/${name}.html`);
      await page.screenshot({ path: join(SHOTS, `static-${name}-phone.png`), fullPage: false });
      const w = await page.evaluate(() => document.documentElement.scrollWidth);
      check(label, w <= PHONE.viewport.width + 1, `the page scrolls sideways: scrollWidth ${w}`, `scrollWidth ${w}`);
    });
  }
  await step("static matrix printed: every cell shows its citation", async () => {
    await page.goto(`file://${dir}/matrix.html`);
    await page.emulateMedia({ media: "print" });
    const { cells, shown } = await page.evaluate(() => {
      const cites = [...document.querySelectorAll("td.cell small.cite")];
      return {
        cells: document.querySelectorAll("td.cell").length,
        shown: cites.filter((c) => getComputedStyle(c).display !== "none" && c.textContent.trim()).length,
      };
    });
    check("static matrix printed: every cell shows its citation", cells > 0 && shown === cells, `${shown} of ${cells} cells show a citation`, `${shown} of ${cells}`);
    await page.emulateMedia({ media: "screen" });
  });
  await step("static assessment: the heat map comes before the matrix", async () => {
    await page.goto(`file://${dir}/assessment.html`);
    const order = await page.evaluate(() => {
      const heat = document.querySelector("table.heat");
      const matrix = document.querySelector("table.matrix");
      return heat && matrix ? heat.compareDocumentPosition(matrix) & Node.DOCUMENT_POSITION_FOLLOWING : 0;
    });
    check("static assessment: the heat map comes before the matrix", order !== 0, "no heat map, or it follows the matrix");
  });
  await context.close();
}

// --- browser -------------------------------------------------------------------------------

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
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

// A page that records console errors, uncaught exceptions and CSP violations.
async function newPage(context) {
  const page = await context.newPage();
  page.problems = [];
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    const url = m.location()?.url || "";
    page.problems.push(`console error: ${m.text()}${url ? ` (${url})` : ""}`);
  });
  page.on("pageerror", (e) => page.problems.push(`uncaught: ${e.message}`));
  // Reported by the page itself too, in case a violation does not reach the console.
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => {
      console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"}`);
    });
  });
  page.setDefaultTimeout(15000);
  return page;
}

// The problems recorded since the last call; `expected` (regular expressions) drops those a
// check provokes on purpose (a 403 page logs its own status as a failed load).
function takeProblems(page, expected = []) {
  return page.problems.splice(0).filter((p) => !expected.some((re) => re.test(p)));
}

// Signs in through the /login form; returns the page, on `/`.
async function signIn(role, options) {
  const context = await browser.newContext({ ...options, baseURL: BASE });
  const page = await newPage(context);
  const label = options.isMobile ? "phone" : "desktop";
  await step(`${role} (${label}): signs in through /login`, async () => {
    const r = await page.goto("/login");
    if (r.status() !== 200) throw new Error(`/login answered ${r.status()}`);
    await page.fill("#token", TOKENS[role]);
    await Promise.all([
      page.waitForURL(`${BASE}/`),
      page.click('form[action="/login"] button[type="submit"]'),
    ]);
    const h1 = (await page.textContent("h1")) || "";
    const problems = takeProblems(page);
    if (problems.length) throw new Error(problems.join("; "));
    pass(`${role} (${label}): signs in through /login`, `landed on / ("${h1.trim()}")`);
  });
  return { context, page };
}

async function shot(page, name, options = {}) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true, ...options });
}

// --- the pages -----------------------------------------------------------------------------

const PAGES = [
  ["overview", "/"],
  ["matrix", "/matrix"],
  ["applications", "/applications"],
  ["application", "/applications/policy-finder"],
  ["teams", "/teams"],
  ["team", null], // the first team linked from /teams
  ["discovery", "/discovery"],
  ["gateway", "/gateway"],
  ["audit", "/audit"],
];

async function teamPath(page) {
  await page.goto("/teams");
  const href = await page.locator("main table a").first().getAttribute("href");
  if (!href) throw new Error("/teams links no team");
  return href;
}

// Opens every page: status 200, an h1, no console error, no CSP violation; screenshots; at
// phone width, no sideways scroll of the page itself.
async function visitAll(page, label) {
  let team = null;
  await step(`${label}: /teams links a team page`, async () => {
    team = await teamPath(page);
    takeProblems(page);
    pass(`${label}: /teams links a team page`, team);
  });
  for (const [name, fixed] of PAGES) {
    const path = fixed ?? team;
    if (!path) continue;
    await step(`${label}: ${name} ${path}`, async () => {
      const r = await page.goto(path);
      await page.waitForLoadState("load");
      const status = r.status();
      const h1 = (await page.locator("h1").first().textContent({ timeout: 3000 }).catch(() => null)) ?? "";
      const problems = takeProblems(page);
      const why = [];
      if (status !== 200) why.push(`status ${status}`);
      if (!h1.trim()) why.push("no h1");
      if (problems.length) why.push(problems.join("; "));
      check(`${label}: ${name} ${path}`, why.length === 0, why.join("; "), `200, h1 "${h1.trim().slice(0, 50)}"`);
      await shot(page, `${name}-${label}`);
      if (label === "phone") {
        const w = await page.evaluate(() => ({
          scroll: Math.max(document.documentElement.scrollWidth, document.body.scrollWidth),
          inner: window.innerWidth,
          // The widest element that sticks out on the right, to name it in the failure.
          culprit: (() => {
            const vw = document.documentElement.clientWidth;
            let worst = null;
            for (const el of document.querySelectorAll("body *")) {
              const right = el.getBoundingClientRect().right;
              if (right > vw + 1 && !el.closest(".scroll, .matrix-wrap, .heat-wrap") && (!worst || right > worst.right)) {
                worst = { right, tag: el.tagName.toLowerCase() + (el.className && typeof el.className === "string" ? "." + el.className.split(" ").join(".") : "") };
              }
            }
            return worst;
          })(),
        }));
        const limit = Math.min(w.inner, PHONE.viewport.width) + 1;
        const where = name === "matrix" ? " (the table scrolls in its .matrix-wrap box; the body must not)" : "";
        check(
          `phone: ${name} does not scroll sideways${where}`,
          w.scroll <= limit,
          `scrollWidth ${w.scroll} > ${limit - 1}` + (w.culprit ? `; widest: ${w.culprit.tag} reaching ${Math.round(w.culprit.right)}px` : ""),
          `scrollWidth ${w.scroll}, innerWidth ${w.inner}`,
        );
        if (name === "matrix") {
          const box = await page.evaluate(() => {
            const s = document.querySelector(".matrix-wrap");
            if (!s) return null;
            const style = getComputedStyle(s);
            return { overflowX: style.overflowX, scroll: s.scrollWidth, client: s.clientWidth };
          });
          check(
            "phone: matrix table scrolls inside its own .matrix-wrap box",
            box && (box.scroll <= box.client || ["auto", "scroll"].includes(box.overflowX)),
            box ? `.scroll overflow-x ${box.overflowX}, scrollWidth ${box.scroll} > clientWidth ${box.client}` : "no .scroll box",
            box ? `overflow-x ${box.overflowX}, ${box.scroll} in ${box.client}` : "",
          );
        }
      }
    });
  }
}

// From /applications to an application, then from its duty list to a duty with declared
// evidence: the target section shows that evidence and the catalog's citation.
async function dutyNavigation(page) {
  const name = "viewer: /applications → complaints-llm → a duty with declared evidence";
  await step(name, async () => {
    await page.goto("/applications");
    await Promise.all([
      page.waitForURL(`${BASE}/applications/complaints-llm`),
      page.click('main a[href="/applications/complaints-llm"]'),
    ]);
    const hash = await page.evaluate(() => {
      for (const a of document.querySelectorAll("nav.toc a")) {
        const id = decodeURIComponent(new URL(a.href).hash.slice(1));
        const section = document.getElementById(id);
        if (section && [...section.querySelectorAll("h4")].some((h) => h.textContent.trim() === "Declared evidence")) {
          return new URL(a.href).hash;
        }
      }
      return null;
    });
    if (!hash) throw new Error("no duty of complaints-llm lists declared evidence");
    await page.click(`nav.toc a[href="${hash}"]`);
    await page.waitForURL((u) => u.hash === hash);
    const target = page.locator("section.duty:target");
    if ((await target.count()) !== 1) throw new Error(`no section.duty is :target after clicking ${hash}`);
    const id = await target.getAttribute("id");
    const title = ((await target.locator("h3").textContent()) || "").trim();
    const declared = await target.locator("h4", { hasText: "Declared evidence" }).count();
    const items = await target.locator("h4:has-text('Declared evidence') + ul.evidence li").count();
    const cite = ((await target.locator(".citation .cite").first().textContent().catch(() => "")) || "").trim();
    const inView = await target.evaluate((el) => {
      const r = el.getBoundingClientRect();
      return r.top < window.innerHeight && r.bottom > 0;
    });
    const problems = takeProblems(page);
    const why = [];
    if (`#${id}` !== decodeURIComponent(hash)) why.push(`:target is #${id}, not ${hash}`);
    if (!declared || !items) why.push("no declared evidence listed");
    if (!cite) why.push("no catalog citation (.citation .cite empty)");
    if (!inView) why.push("the section is not scrolled into view");
    if (problems.length) why.push(problems.join("; "));
    check(name, why.length === 0, why.join("; "), `${hash} "${title}": ${items} evidence item(s), cites "${cite.slice(0, 60)}"`);
    await shot(page, "duty-desktop", { fullPage: false });
  });
}

async function discoveryUsers(page, role) {
  const name = role === "viewer"
    ? "viewer: /discovery shows pseudonymised users (no @, user-…)"
    : "auditor: /discovery shows real user names";
  await step(name, async () => {
    await page.goto("/discovery");
    const users = await page.evaluate(() => {
      const tables = [...document.querySelectorAll("main table.list")];
      for (const t of tables) {
        const heads = [...t.querySelectorAll("thead th")].map((th) => th.textContent.trim());
        const col = heads.indexOf("User");
        if (col >= 0) return [...t.querySelectorAll("tbody tr")].map((tr) => tr.children[col].textContent.trim());
      }
      return null;
    });
    takeProblems(page);
    if (!users) throw new Error("no findings table with a User column");
    if (!users.length) throw new Error("the findings table is empty");
    if (role === "viewer") {
      const leaked = users.filter((u) => u.includes("@"));
      const named = users.filter((u) => u && u !== "-" && u !== "–");
      check(
        name,
        leaked.length === 0 && named.every((u) => u.startsWith("user-")),
        leaked.length ? `user names shown to a viewer: ${leaked.slice(0, 3).join(", ")}` : `not pseudonymised: ${named.filter((u) => !u.startsWith("user-")).slice(0, 3).join(", ")}`,
        `${users.length} rows, e.g. ${users[0]}`,
      );
    } else {
      const real = users.filter((u) => u.includes("@"));
      check(name, real.length > 0, `no user name with @ among ${users.slice(0, 5).join(", ")}`, `e.g. ${real[0]}`);
    }
  });
}

async function viewerIsNotAdmin(page) {
  await step("viewer: the menu has no Keys link", async () => {
    await page.goto("/");
    const keys = await page.locator("header nav a", { hasText: "Keys" }).count();
    const toAdmin = await page.locator('a[href^="/admin"]').count();
    check("viewer: the menu has no Keys link", keys === 0 && toAdmin === 0, `${keys} Keys link(s), ${toAdmin} link(s) to /admin`);
  });
  await step("viewer: /admin/keys is a 403 page", async () => {
    const r = await page.goto("/admin/keys");
    const h1 = ((await page.textContent("h1")) || "").trim();
    const secret = await page.locator("#new-key, #application").count();
    const problems = takeProblems(page, [/status of 403 \(Forbidden\).*\/admin\/keys\)$/]);
    const why = [];
    if (r.status() !== 403) why.push(`status ${r.status()}`);
    if (!h1.startsWith("403")) why.push(`h1 "${h1}"`);
    if (secret) why.push("the key form is shown");
    if (problems.length) why.push(problems.join("; "));
    check("viewer: /admin/keys is a 403 page", why.length === 0, why.join("; "), `403, "${h1}"`);
    await shot(page, "forbidden-desktop", { fullPage: false });
  });
}

// The Create key form exactly as Chromium submits it: the page's referrer policy must let it
// send the dashboard's own origin (under `no-referrer` it sent `Origin: null`, refused).
async function adminFormAsSent(page) {
  const name = "admin: the Create key form as Chromium submits it is accepted";
  await step(name, async () => {
    await page.goto("/admin/keys");
    await page.selectOption("#application", { index: 0 });
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.url() === `${BASE}/admin/keys` && r.request().method() === "POST"),
      page.locator("form.inline button", { hasText: "Create key" }).click(),
    ]);
    await page.waitForLoadState("load");
    const origin = (await response.request().allHeaders()).origin;
    const status = response.status();
    const shown = await page.locator("#new-key").count();
    check(name, status === 200 && shown === 1, `answered ${status} (Origin: ${origin}), #new-key shown: ${shown === 1}`, `200 with Origin: ${origin}`);
  });
}

// Admin: create a key in the form, see it once, revoke it (accepting the confirm dialog).
async function adminKeys(page, label) {
  await adminFormAsSent(page);
  let secret = null;
  await step(`admin: creates a gateway key in /admin/keys`, async () => {
    const r = await page.goto("/admin/keys");
    if (r.status() !== 200) throw new Error(`/admin/keys answered ${r.status()}`);
    const menu = await page.locator("header nav a", { hasText: "Keys" }).count();
    if (!menu) throw new Error("the admin's menu has no Keys link");
    const options = await page.locator("#application option").evaluateAll((os) => os.map((o) => o.value));
    const app = options.includes("complaints-llm") ? "complaints-llm" : options[0];
    if (!app) throw new Error("#application offers no application");
    await page.selectOption("#application", app);
    await Promise.all([
      page.waitForURL(`${BASE}/admin/keys`),
      page.waitForEvent("load"),
      page.locator("form.inline button", { hasText: "Create key" }).click(),
    ]);
    secret = ((await page.textContent("#new-key")) || "").trim();
    const problems = takeProblems(page);
    const why = [];
    if (!secret.startsWith("dmk_")) why.push(`#new-key is "${secret.slice(0, 12)}"`);
    if (problems.length) why.push(problems.join("; "));
    check(`admin: creates a gateway key in /admin/keys`, why.length === 0, why.join("; "), `for ${app}: ${secret.slice(0, 8)}…`);
    await shot(page, `keys-${label}`);
  });
  if (!secret || !secret.startsWith("dmk_")) return;
  await step("admin: revokes the new key (confirm dialog accepted)", async () => {
    // The row whose shown prefix starts the new secret.
    const rowId = await page.evaluate((s) => {
      for (const tr of document.querySelectorAll("main table.list tbody tr")) {
        const prefix = (tr.querySelector("code")?.textContent || "").replace("…", "").trim();
        if (prefix && s.startsWith(prefix)) return tr.id;
      }
      return null;
    }, secret);
    if (!rowId) throw new Error("no row in the key list shows the new key's prefix");
    const row = page.locator(`tr[id="${rowId}"]`);
    let dialog = null;
    page.once("dialog", (d) => {
      dialog = d.message();
      d.accept();
    });
    await Promise.all([
      page.waitForURL(/\/admin\/keys\/.+\/revoke$/),
      row.locator("button", { hasText: "Revoke" }).click(),
    ]);
    await page.waitForLoadState("load");
    const state = ((await page.locator(`tr[id="${rowId}"] td`).nth(3).textContent()) || "").trim();
    const revokeButtons = await page.locator(`tr[id="${rowId}"] button`).count();
    const message = ((await page.locator("main p.ok").first().textContent().catch(() => "")) || "").trim();
    const problems = takeProblems(page);
    const why = [];
    if (!dialog) why.push("no confirm dialog before revoking");
    if (state !== "revoked") why.push(`row state "${state}"`);
    if (revokeButtons) why.push("the revoked row still has a Revoke button");
    if (problems.length) why.push(problems.join("; "));
    check("admin: revokes the new key (confirm dialog accepted)", why.length === 0, why.join("; "), `${rowId}: "${state}"; "${message.slice(0, 50)}"`);
  });
}

async function signOut(page) {
  await step("admin: signs out; / then redirects to /login", async () => {
    await Promise.all([
      page.waitForURL(`${BASE}/login`),
      page.locator("header .who button", { hasText: "Sign out" }).click(),
    ]);
    const r = await page.goto("/");
    const url = page.url();
    const form = await page.locator("#token").count();
    const problems = takeProblems(page);
    const why = [];
    if (!url.endsWith("/login")) why.push(`/ ended at ${url}`);
    if (r.status() !== 200) why.push(`status ${r.status()}`);
    if (!form) why.push("no token field");
    if (problems.length) why.push(problems.join("; "));
    check("admin: signs out; / then redirects to /login", why.length === 0, why.join("; "), "redirected to /login");
  });
}

async function wrongToken() {
  const context = await browser.newContext({ ...DESKTOP, baseURL: BASE });
  const page = await newPage(context);
  await step("anyone: / without a session redirects to /login; a wrong token is refused", async () => {
    await page.goto("/");
    if (!page.url().endsWith("/login")) throw new Error(`/ without a session ended at ${page.url()}`);
    await shot(page, "login-desktop", { fullPage: false });
    await page.fill("#token", "dmt_0000000000000000000000000000000000000000000000000000000000000000");
    const [r] = await Promise.all([
      page.waitForResponse((r) => r.url() === `${BASE}/login` && r.request().method() === "POST"),
      page.click('form[action="/login"] button[type="submit"]'),
    ]);
    await page.waitForLoadState("load");
    const alert = ((await page.locator('[role="alert"]').first().textContent().catch(() => "")) || "").trim();
    // The 401 answer is logged by Chromium as a failed load; that is expected here.
    const problems = takeProblems(page, [/status of 401 .*\/login\)$/]);
    const why = [];
    if (r.status() !== 401) why.push(`status ${r.status()}`);
    if (!alert) why.push("no error message");
    if (problems.length) why.push(problems.join("; "));
    check("anyone: / without a session redirects to /login; a wrong token is refused", why.length === 0, why.join("; "), `401, "${alert}"`);
  });
  await context.close();
}

// --- run -----------------------------------------------------------------------------------

const started = Date.now();
try {
  await wrongToken();

  // Viewer, desktop: every page, duty navigation, no admin, pseudonyms.
  {
    const { context, page } = await signIn("viewer", DESKTOP);
    await visitAll(page, "desktop");
    await step("desktop: overview screenshot (viewport)", async () => {
      await page.goto("/");
      await shot(page, "overview-desktop-viewport", { fullPage: false });
      pass("desktop: overview screenshot (viewport)");
    });
    await dutyNavigation(page);
    await viewerIsNotAdmin(page);
    await discoveryUsers(page, "viewer");
    await context.close();
  }
  // Viewer, phone: every page again, screenshots and sideways scroll.
  {
    const { context, page } = await signIn("viewer", PHONE);
    await visitAll(page, "phone");
    await step("phone: application page screenshot (viewport)", async () => {
      await page.goto("/applications/complaints-llm");
      await shot(page, "application-phone-viewport", { fullPage: false });
      pass("phone: application page screenshot (viewport)");
    });
    await context.close();
  }
  // Auditor: real names.
  {
    const { context, page } = await signIn("auditor", DESKTOP);
    await discoveryUsers(page, "auditor");
    await context.close();
  }
  // Admin: keys at phone width (screenshot), then create, revoke and sign out at desktop.
  {
    const { context, page } = await signIn("admin", PHONE);
    await step("admin (phone): /admin/keys", async () => {
      const r = await page.goto("/admin/keys");
      await shot(page, "keys-phone");
      const w = await page.evaluate(() => document.documentElement.scrollWidth);
      takeProblems(page);
      check("admin (phone): /admin/keys does not scroll sideways", r.status() === 200 && w <= PHONE.viewport.width + 1, `status ${r.status()}, scrollWidth ${w}`, `scrollWidth ${w}`);
    });
    await context.close();
  }
  {
    const { context, page } = await signIn("admin", DESKTOP);
    await adminKeys(page, "desktop");
    await signOut(page);
    await context.close();
  }
  await staticReports();
} finally {
  await browser.close();
}

const seconds = ((Date.now() - started) / 1000).toFixed(1);
for (const n of notes) console.log(`note  ${n}`);
if (failures.length) {
  console.log(`\n${failures.length} of ${passed + failures.length} checks failed (${seconds} s):`);
  for (const f of failures) console.log(`  - ${f}`);
  process.exit(1);
}
console.log(`\nall ${passed} checks passed in ${seconds} s; screenshots in ${SHOTS}`);
