// Renders ostoolkit's markdown as a GitHub job summary would show it, in a real chromium, and
// reports what a reader would see: per mermaid block whether it parsed, per chart its visible
// marks, per table whether its verdict column fits without scrolling. Used by
// tests/os/test_browser_os.py; also runnable by hand:
//
//   node tests/browser/render.mjs --out build/browser a.md b.md
//
// Markdown becomes HTML through GitHub's own parser (Debian's cmark-gfm, safe mode: raw HTML is
// dropped as GitHub drops it); the page is an 872 px content column with GitHub's table rules,
// in a light and a dark theme; each ```mermaid block is rendered by mermaid 10.9 and by mermaid
// 11 (both pinned in package.json), loaded from node_modules' dist bundle on a file:// page.
// For each file, mermaid version and theme it writes <name>-mermaid<ver>-<theme>.html and .png
// into the output folder. One JSON object with every finding goes to stdout.

import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { chromium } from "playwright-core";

const HERE = dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.OSTOOLKIT_CHROMIUM || "/usr/bin/chromium";
const CMARK = process.env.OSTOOLKIT_CMARK_GFM || "cmark-gfm";
// GitHub's flavour: its extensions and <pre lang="..."> for fenced code; raw HTML stays out
// (cmark-gfm's default safe mode), as GitHub's sanitiser keeps it out.
const CMARK_ARGS = ["--github-pre-lang", "-e", "table", "-e", "strikethrough", "-e", "autolink", "-e", "tagfilter"];
// Flags this machine's closed network needs: no QUIC, no background fetches, no updates.
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const CONTENT_PX = 872; // a job summary's content column
const PAD_PX = 16;
const STEP_MS = 30000; // bound on any single browser step
const MERMAIDS = [
  { ver: "10", pkg: "mermaid10" },
  { ver: "11", pkg: "mermaid11" },
];
const THEMES = {
  light: {
    bg: "#ffffff", fg: "#1f2328", border: "#d0d7de", rowAlt: "#f6f8fa", codeBg: "rgba(175,184,193,0.2)",
    link: "#0969da", muted: "#656d76",
  },
  dark: {
    bg: "#0d1117", fg: "#e6edf3", border: "#30363d", rowAlt: "#161b22", codeBg: "rgba(110,118,129,0.4)",
    link: "#4493f8", muted: "#8d96a0",
  },
};

function usage(message) {
  process.stderr.write(`${message}\nusage: node render.mjs --out DIR FILE.md [FILE.md ...]\n`);
  process.exit(2);
}

function parseArgs(argv) {
  let out = null;
  const files = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--out") out = argv[++i];
    else if (argv[i].startsWith("--out=")) out = argv[i].slice(6);
    else files.push(argv[i]);
  }
  if (!out) usage("--out DIR is required");
  if (!files.length) usage("no markdown file given");
  return { out: resolve(out), files: files.map((f) => resolve(f)) };
}

function toHtml(file) {
  return execFileSync(CMARK, [...CMARK_ARGS, file], { encoding: "utf-8", timeout: STEP_MS });
}

function css(t) {
  // GitHub's markdown-body rules that matter here, at a job summary's 14 px.
  return `
  html, body { margin: 0; background: ${t.bg}; color: ${t.fg}; }
  body { padding: ${PAD_PX}px; }
  .markdown-body {
    box-sizing: border-box; width: ${CONTENT_PX}px;
    font-family: -apple-system, BlinkMacSystemFont, "Segoe UI", "Noto Sans", Helvetica, Arial, sans-serif,
      "Apple Color Emoji", "Segoe UI Emoji";
    font-size: 14px; line-height: 1.5; word-wrap: break-word; color: ${t.fg}; background: ${t.bg};
  }
  .markdown-body > *:first-child { margin-top: 0 !important; }
  .markdown-body h1, .markdown-body h2, .markdown-body h3, .markdown-body h4 {
    margin-top: 24px; margin-bottom: 16px; font-weight: 600; line-height: 1.25; }
  .markdown-body h3 { font-size: 1.25em; }
  .markdown-body h4 { font-size: 1em; }
  .markdown-body p, .markdown-body ul, .markdown-body ol, .markdown-body table, .markdown-body pre,
  .markdown-body blockquote { margin-top: 0; margin-bottom: 16px; }
  .markdown-body ul, .markdown-body ol { padding-left: 2em; }
  .markdown-body li + li { margin-top: 0.25em; }
  .markdown-body a { color: ${t.link}; }
  .markdown-body code {
    padding: .2em .4em; margin: 0; font-size: 85%; white-space: break-spaces; background-color: ${t.codeBg};
    border-radius: 6px;
    font-family: ui-monospace, SFMono-Regular, "SF Mono", Menlo, Consolas, "Liberation Mono", monospace; }
  .markdown-body pre { padding: 16px; overflow: auto; font-size: 85%; line-height: 1.45;
    background-color: ${t.rowAlt}; border-radius: 6px; }
  .markdown-body pre code { padding: 0; background: transparent; white-space: pre; font-size: 100%; }
  .markdown-body table {
    border-spacing: 0; border-collapse: collapse; display: block; width: max-content;
    max-width: 100%; overflow: auto; font-variant: tabular-nums; }
  .markdown-body table th { font-weight: 600; }
  .markdown-body table th, .markdown-body table td { padding: 6px 13px; border: 1px solid ${t.border}; }
  .markdown-body table td > :last-child { margin-bottom: 0; }
  .markdown-body table tr { background-color: ${t.bg}; border-top: 1px solid ${t.border}; }
  .markdown-body table tr:nth-child(2n) { background-color: ${t.rowAlt}; }
  .markdown-body .mermaid-chart { margin-bottom: 16px; }
  .markdown-body .mermaid-error { color: #d1242f; white-space: pre-wrap; font-family: monospace; }
  `;
}

function page(title, body, theme, mermaidJs) {
  const t = THEMES[theme];
  return `<!DOCTYPE html>
<html lang="en" data-color-mode="${theme}"><head><meta charset="utf-8">
<title>${title}</title>
<style>${css(t)}</style>
<script src="${pathToFileURL(mermaidJs).href}"></script>
</head><body><article class="markdown-body">
${body}
</article></body></html>
`;
}

// Runs in the page: render every <pre lang="mermaid">, then measure the charts and tables.
async function inPage({ theme }) {
  const out = { loaded: typeof window.mermaid !== "undefined", charts: [], tables: [] };
  const parseColour = (text) => {
    if (!text || text === "none" || text === "transparent") return null;
    const probe = document.createElement("div");
    probe.style.color = text;
    document.body.appendChild(probe);
    const got = getComputedStyle(probe).color;
    probe.remove();
    const m = got.match(/rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)(?:,\s*([\d.]+))?\)/);
    if (!m) return null;
    return { r: +m[1], g: +m[2], b: +m[3], a: m[4] === undefined ? 1 : +m[4], text };
  };
  const distance = (a, b) => Math.hypot(a.r - b.r, a.g - b.g, a.b - b.b);
  const hex = (c) => (c ? "#" + [c.r, c.g, c.b].map((v) => Math.round(v).toString(16).padStart(2, "0")).join("") : null);
  const pageBg = parseColour(getComputedStyle(document.body).backgroundColor);
  if (!out.loaded) return out;
  const mermaid = window.mermaid;
  mermaid.initialize({ startOnLoad: false, theme: theme === "light" ? "default" : "dark" });
  const blocks = [...document.querySelectorAll('pre[lang="mermaid"]')];
  for (let i = 0; i < blocks.length; i++) {
    const pre = blocks[i];
    const text = pre.textContent;
    const first = text.split("\n").find((line) => line.trim() && !line.trim().startsWith("%%")) || "";
    const title = (text.match(/^\s*title\s+"([^"]*)"/m) || [])[1] || null;
    const chart = { index: i, kind: first.trim(), title, ok: false, error: null };
    const id = `ostoolkit-mermaid-${i}`;
    const holder = document.createElement("div");
    holder.className = "mermaid-chart";
    try {
      const { svg } = await mermaid.render(id, text);
      holder.innerHTML = svg;
      pre.replaceWith(holder);
      const root = holder.querySelector("svg");
      if (!root) throw new Error("mermaid returned no <svg>");
      if (root.getAttribute("aria-roledescription") === "error" || /Syntax error/i.test(root.textContent)) {
        throw new Error(`mermaid drew its error picture: ${root.textContent.trim().slice(0, 200)}`);
      }
      chart.ok = true;
    } catch (err) {
      chart.error = String((err && (err.message || err.str)) || err);
      document.getElementById(id)?.remove();
      document.getElementById(`d${id}`)?.remove();
      holder.className = "mermaid-error";
      holder.textContent = `mermaid error: ${chart.error}`;
      if (pre.isConnected) pre.replaceWith(holder);
      out.charts.push(chart);
      continue;
    }
    const svg = holder.querySelector("svg");
    const box = svg.getBoundingClientRect();
    chart.svg = { width: Math.round(box.width), height: Math.round(box.height) };
    const chartBg = parseColour(svg.querySelector("rect.background, .background > rect")?.getAttribute("fill"));
    chart.background = { page: hex(pageBg), chart: hex(chartBg) };
    const plot = svg.querySelector("g.plot") || svg;
    const near = (c) => [pageBg, chartBg].some((bg) => bg && c && distance(c, bg) < 24);
    chart.bars = [];
    chart.lines = [];
    for (const rect of plot.querySelectorAll("rect")) {
      const r = rect.getBoundingClientRect();
      const fill = parseColour(getComputedStyle(rect).fill) || parseColour(rect.getAttribute("fill"));
      const opacity = +getComputedStyle(rect).opacity * (fill ? fill.a : 0);
      const series = rect.closest("g[class*='bar-plot']")?.getAttribute("class") || null;
      chart.bars.push({
        series, width: +r.width.toFixed(1), height: +r.height.toFixed(1), fill: hex(fill), opacity,
        visible: r.width > 0 && r.height > 0 && !!fill && opacity > 0.05 && !near(fill),
        nearBackground: !fill || near(fill),
        left: +(r.left - box.left).toFixed(1), top: +(r.top - box.top).toFixed(1),
      });
    }
    for (const path of plot.querySelectorAll("path")) {
      const r = path.getBoundingClientRect();
      const style = getComputedStyle(path);
      const stroke = parseColour(style.stroke) || parseColour(path.getAttribute("stroke"));
      const width = parseFloat(style.strokeWidth) || 0;
      const length = typeof path.getTotalLength === "function" ? path.getTotalLength() : 0;
      const series = path.closest("g[class*='line-plot']")?.getAttribute("class") || null;
      chart.lines.push({
        series, length: +length.toFixed(1), width: +r.width.toFixed(1), height: +r.height.toFixed(1),
        stroke: hex(stroke), strokeWidth: width,
        visible: length > 0 && width > 0 && !!stroke && !near(stroke),
        nearBackground: !stroke || near(stroke),
      });
    }
    // Text that runs past the chart's edges is cut off (an x label centred on the last tick).
    chart.clippedText = [...svg.querySelectorAll("text")]
      .map((text) => ({ text: text.textContent, r: text.getBoundingClientRect() }))
      .filter(({ r }) => r.width > 0 && (r.left < box.left - 0.5 || r.right > box.right + 0.5 || r.top < box.top - 0.5 || r.bottom > box.bottom + 0.5))
      .map(({ text, r }) => ({ text, beyondPx: Math.round(Math.max(box.left - r.left, r.right - box.right, box.top - r.top, r.bottom - box.bottom)) }));
    // Bars of several series at one label: side by side (distinct x) or drawn over each other.
    const byLabel = new Map();
    for (const bar of chart.bars.filter((b) => b.width > 0 && b.height > 0)) {
      const key = chart.kind.includes("horizontal") ? bar.top : bar.left;
      byLabel.set(key, (byLabel.get(key) || 0) + 1);
    }
    chart.barsSharingAPosition = Math.max(0, ...byLabel.values());
    out.charts.push(chart);
  }
  const tables = [...document.querySelectorAll(".markdown-body table")];
  tables.forEach((table, index) => {
    const headers = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim());
    let column = headers.findIndex((h) => /verdict/i.test(h));
    const byVerdict = column >= 0;
    if (column < 0) column = headers.length - 1;
    const tb = table.getBoundingClientRect();
    const style = getComputedStyle(table);
    const visibleRight = tb.left + parseFloat(style.borderLeftWidth || "0") + table.clientWidth;
    let columnRight = -Infinity;
    let columnLeft = Infinity;
    for (const row of table.querySelectorAll("tr")) {
      const cell = row.children[column];
      if (!cell) continue;
      const r = cell.getBoundingClientRect();
      columnRight = Math.max(columnRight, r.right);
      columnLeft = Math.min(columnLeft, r.left);
    }
    const widths = [...(table.querySelector("tr")?.children || [])].map((c) => Math.round(c.getBoundingClientRect().width));
    out.tables.push({
      index,
      headers,
      column,
      columnHeader: headers[column] ?? null,
      chosenBy: byVerdict ? "verdict" : "last",
      columnLeft: Math.round(columnLeft - tb.left),
      columnRight: Math.round(columnRight - tb.left),
      visibleWidth: Math.round(visibleRight - tb.left),
      clientWidth: table.clientWidth,
      scrollWidth: table.scrollWidth,
      columnWidths: widths,
      fits: columnRight <= visibleRight + 0.5,
      hiddenPx: Math.max(0, Math.round(columnRight - visibleRight)),
    });
  });
  return out;
}

async function main() {
  const { out, files } = parseArgs(process.argv.slice(2));
  mkdirSync(out, { recursive: true });
  const versions = {};
  for (const m of MERMAIDS) {
    const dir = join(HERE, "node_modules", m.pkg);
    m.js = join(dir, "dist", "mermaid.min.js");
    m.version = JSON.parse(readFileSync(join(dir, "package.json"), "utf-8")).version;
    versions[m.ver] = m.version;
  }
  const cmarkVersion = execFileSync(CMARK, ["--version"], { encoding: "utf-8", timeout: STEP_MS }).split("\n")[0];
  const htmlOf = Object.fromEntries(files.map((f) => [f, toHtml(f)]));
  const userDataDir = mkdtempSync(join(tmpdir(), "ostoolkit-chromium-"));
  const result = { cmark: cmarkVersion, mermaid: versions, contentWidth: CONTENT_PX, out, files: {} };
  let context = null;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: CONTENT_PX + 2 * PAD_PX, height: 800 },
      timeout: STEP_MS,
    });
    result.browser = context.browser()?.version() ?? null;
    for (const file of files) {
      const name = basename(file).replace(/\.(md|markdown)$/i, "");
      const renders = [];
      for (const m of MERMAIDS) {
        for (const theme of Object.keys(THEMES)) {
          const stem = `${name}-mermaid${m.ver}-${theme}`;
          const htmlPath = join(out, `${stem}.html`);
          writeFileSync(htmlPath, page(`${name} (mermaid ${m.version}, ${theme})`, htmlOf[file], theme, m.js));
          const tab = await context.newPage();
          tab.setDefaultTimeout(STEP_MS);
          const consoleErrors = [];
          tab.on("pageerror", (err) => consoleErrors.push(String(err)));
          try {
            await tab.emulateMedia({ colorScheme: theme });
            await tab.goto(pathToFileURL(htmlPath).href, { waitUntil: "load" });
            const found = await tab.evaluate(inPage, { theme });
            const screenshot = join(out, `${stem}.png`);
            await tab.screenshot({ path: screenshot, fullPage: true });
            renders.push({ mermaid: m.version, ver: m.ver, theme, html: htmlPath, screenshot, pageErrors: consoleErrors, ...found });
          } finally {
            await tab.close();
          }
        }
      }
      // GitHub keeps some raw HTML (after its sanitiser) that safe mode drops: count what was.
      const rawHtmlOmitted = (htmlOf[file].match(/<!-- raw HTML omitted -->/g) || []).length;
      result.files[basename(file)] = { path: file, rawHtmlOmitted, renders };
    }
  } finally {
    if (context) await context.close().catch(() => {});
    rmSync(userDataDir, { recursive: true, force: true });
  }
  process.stdout.write(JSON.stringify(result, null, 1) + "\n");
}

main().catch((err) => {
  process.stderr.write(`render.mjs: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
