// emostream dashboard: draws the server's snapshot (GET /api/stream, Server-Sent Events) as plain DOM and SVG.
// Every text from the topics is user input: it is only ever set through textContent or SVG text nodes, never as HTML.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
// Okabe-Ito colours (distinguishable with colour-blindness), then more for labels beyond the six emotions.
const NAMED = { joy: "#E69F00", sadness: "#0072B2", anger: "#D55E00", fear: "#CC79A7", love: "#F0E442", surprise: "#56B4E9" };
const EXTRA = ["#009E73", "#999999", "#882255", "#44AA99", "#332288", "#DDCC77", "#117733", "#AA4499", "#88CCEE"];

let streamUp = false;
let latest = null;
const drawn = {};

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  for (const child of children) node.append(child);
  return node;
}

function colourOf(label, labels) {
  if (NAMED[label]) return NAMED[label];
  const others = labels.filter((name) => !NAMED[name]);
  return EXTRA[Math.max(0, others.indexOf(label)) % EXTRA.length];
}

// Dark or white text on a label's colour, whichever contrasts more (WCAG relative luminance).
function inkOn(colour) {
  const linear = [1, 3, 5].map((i) => {
    const c = parseInt(colour.slice(i, i + 2), 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  const luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2];
  return (luminance + 0.05) / 0.05 >= 1.05 / (luminance + 0.05) ? "#111111" : "#ffffff";
}

function clock(ms) {
  return typeof ms === "number" ? new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" }) : "";
}

function percent(part, whole) {
  return whole ? `${Math.round((100 * part) / whole)}%` : "–";
}

function swatch(colour) {
  const node = el("span", { class: "swatch", "aria-hidden": "true" });
  node.style.backgroundColor = colour; // CSSOM, allowed by the page's Content-Security-Policy (no inline styles)
  return node;
}

// Redraw a part only when its data changed: keeps the DOM (and a reader's place in it) still between updates.
function drawPart(name, data, draw) {
  const key = JSON.stringify(data);
  if (drawn[name] === key) return;
  drawn[name] = key;
  draw(data);
}

function showStatus() {
  const status = document.getElementById("status");
  let text = "Live";
  let kind = "live";
  if (!streamUp) {
    text = latest ? "Disconnected from the dashboard, retrying… (showing the last data)" : "Connecting…";
    kind = latest ? "down" : "waiting";
  } else if (!latest.connected) {
    text = `Disconnected from Kafka, retrying… (showing the last data: ${latest.problem || "no answer"})`;
    kind = "down";
  }
  if (status.textContent !== text) status.textContent = text;
  status.className = `status status-${kind}`;
  status.dataset.state = kind;
}

function drawLegend(labels) {
  const legend = document.getElementById("legend");
  legend.replaceChildren(...labels.map((label) => el("li", {}, swatch(colourOf(label, labels)), label)));
}

function sourceChart(source, labels) {
  const width = 600;
  const height = 200;
  const top = 24;
  const bottom = 30;
  const left = 48;
  const windows = source.windows;
  const slot = (width - left) / Math.max(windows.length, 12);
  const highest = Math.max(1, ...windows.map((w) => Object.values(w.counts).reduce((a, b) => a + b, 0)));
  const scale = (height - top - bottom) / highest;
  const drift = new Set(source.drift);
  const chart = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": `Emotions per window for ${source.source}: ${windows.length} windows, ${source.total} events`,
  });
  chart.append(
    svg("text", { x: left - 6, y: top + 8, "text-anchor": "end", class: "axis" }, String(highest)),
    svg("text", { x: left - 6, y: height - bottom, "text-anchor": "end", class: "axis" }, "0"),
    svg("line", { x1: left, x2: width, y1: height - bottom, y2: height - bottom, stroke: "#d5d9e0" }),
  );
  windows.forEach((window, index) => {
    const x = left + index * slot + slot * 0.1;
    const total = Object.values(window.counts).reduce((a, b) => a + b, 0);
    const bar = svg("g", { class: window.final ? "closed-window" : "open-window" });
    let y = height - bottom;
    for (const label of labels) {
      const count = window.counts[label] || 0;
      if (!count) continue;
      const h = count * scale;
      y -= h;
      const title = `${label}: ${count} of ${total} (${percent(count, total)}), ${clock(window.start)}–${clock(window.end)}${window.final ? "" : ", still open"}`;
      bar.append(svg("rect", { x, y, width: slot * 0.8, height: h, fill: colourOf(label, labels) }, svg("title", {}, title)));
    }
    chart.append(bar);
    if (drift.has(window.start)) {
      const mid = x + slot * 0.4;
      chart.append(
        svg("path", { d: `M${mid - 8} 2 L${mid + 8} 2 L${mid} 16 Z`, class: "drift-mark" }, svg("title", {}, `drift reported for the window starting ${clock(window.start)}`)),
      );
    }
  });
  if (windows.length) {
    chart.append(svg("text", { x: left, y: height - 4, class: "axis" }, clock(windows[0].start)));
    chart.append(svg("text", { x: width, y: height - 4, "text-anchor": "end", class: "axis" }, clock(windows[windows.length - 1].end)));
  }
  return chart;
}

function totalsTable(source, labels) {
  const rows = labels
    .filter((label) => source.totals[label])
    .map((label) =>
      el(
        "tr",
        { "data-label": label },
        el("th", { scope: "row" }, el("span", { class: "swatch-label" }, swatch(colourOf(label, labels)), label)),
        el("td", { class: "count", text: String(source.totals[label]) }),
        el("td", { text: percent(source.totals[label], source.total) }),
      ),
    );
  return el(
    "table",
    { class: "totals", "data-source": source.source },
    el("caption", { text: `Totals over the ${source.windows.length} windows shown: ${source.total} events` }),
    el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "Emotion" }), el("th", { scope: "col", text: "Events" }), el("th", { scope: "col", text: "Share" }))),
    el("tbody", {}, ...rows),
  );
}

function drawSources({ sources, labels }) {
  document.getElementById("mix-empty").hidden = sources.length > 0;
  const cards = sources.map((source) =>
    el(
      "article",
      { class: "source", "data-source": source.source },
      el("h3", { text: source.source === "*" ? "All sources" : source.source }),
      sourceChart(source, labels),
      totalsTable(source, labels),
    ),
  );
  document.getElementById("sources").replaceChildren(...cards);
}

function drawFeed({ feed, labels }) {
  document.getElementById("feed-empty").hidden = feed.length > 0;
  const items = feed.map((event) => {
    const chip = el("span", { class: "chip", text: event.label });
    chip.style.backgroundColor = colourOf(event.label, labels);
    chip.style.color = inkOn(colourOf(event.label, labels));
    const text = event.text === null ? el("p", { class: "text text-missing", text: "(text sent before this dashboard started)" }) : el("p", { class: "text", text: event.text });
    return el(
      "li",
      { class: "event", "data-id": event.id, "data-label": event.label },
      el("div", { class: "event-head" }, chip, el("span", { class: "score", text: event.score.toFixed(2) }), el("span", { text: event.source }), el("span", { text: event.id })),
      text,
    );
  });
  document.getElementById("feed").replaceChildren(...items);
}

function drawRate(rate) {
  const width = 300;
  const height = 60;
  const series = rate.series;
  const highest = Math.max(1, ...series);
  const step = width / Math.max(1, series.length - 1);
  const points = series.map((v, i) => `${(i * step).toFixed(1)},${(height - 2 - (v / highest) * (height - 6)).toFixed(1)}`).join(" ");
  const chart = svg(
    "svg",
    { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `Events per second over the last minute, peak ${highest}` },
    svg("polyline", { points, fill: "none", stroke: "#0072B2", "stroke-width": 2 }),
  );
  document.getElementById("rate-chart").replaceChildren(chart);
}

function drawDeadLetters(dead) {
  document.getElementById("dead-empty").hidden = dead.total > 0;
  const table = document.getElementById("dead-reasons");
  table.hidden = dead.total === 0;
  table.tBodies[0].replaceChildren(
    ...Object.entries(dead.by_reason).map(([reason, count]) =>
      el("tr", { "data-reason": reason }, el("th", { scope: "row", text: reason }), el("td", { class: "count", text: String(count) })),
    ),
  );
  document.getElementById("dead-recent").replaceChildren(
    ...dead.recent.map((letter) =>
      el("li", {}, el("span", { class: "error-name", text: letter.error }), ` ${letter.reason}`, letter.raw ? el("div", { class: "text", text: letter.raw }) : ""),
    ),
  );
}

function drawDrift(drift) {
  document.getElementById("drift-empty").hidden = drift.length > 0;
  document.getElementById("drift").replaceChildren(
    ...drift.map((report) => {
      const moves = report.top_changes
        .slice(0, 3)
        .map((c) => `${c.label} ${c.change >= 0 ? "+" : ""}${Math.round(100 * c.change)} pts`)
        .join(", ");
      return el("li", { "data-source": report.source, text: `${report.source}, window from ${clock(report.window_start)}: distance ${report.distance.toFixed(2)}${moves ? ` (${moves})` : ""}` });
    }),
  );
}

function drawModel(model) {
  const announced = model.announced;
  document.getElementById("model-empty").hidden = Boolean(announced);
  const rows = [];
  if (announced) {
    rows.push(el("dt", { text: "Current version" }), el("dd", { id: "model-version", text: announced.version }));
    for (const [name, value] of Object.entries(announced.metrics || {})) {
      if (typeof value === "number") rows.push(el("dt", { text: name.replaceAll("_", " ") }), el("dd", { text: value.toFixed(3) }));
    }
    rows.push(el("dt", { text: "Labels" }), el("dd", { text: announced.labels.join(", ") }));
  }
  document.getElementById("model").replaceChildren(...rows);
}

function render(state) {
  latest = state;
  showStatus();
  document.getElementById("rate").textContent = state.rate.per_second.toFixed(1);
  document.getElementById("labelled").textContent = state.labelled.toLocaleString();
  document.getElementById("dead-total").textContent = state.dead_letters.total.toLocaleString();
  document.getElementById("serving").textContent = state.model.serving || (state.model.announced ? state.model.announced.version : "–");
  const nothing = !state.sources.length && !state.feed.length && !state.dead_letters.total && !state.labelled;
  document.getElementById("empty").hidden = !nothing;
  drawPart("legend", state.labels, drawLegend);
  drawPart("sources", { sources: state.sources, labels: state.labels }, drawSources);
  drawPart("feed", { feed: state.feed, labels: state.labels }, drawFeed);
  drawPart("rate", state.rate, drawRate);
  drawPart("dead", state.dead_letters, drawDeadLetters);
  drawPart("drift", state.drift, drawDrift);
  drawPart("model", state.model, drawModel);
}

function connect() {
  const stream = new EventSource("/api/stream");
  stream.onmessage = (message) => {
    streamUp = true;
    render(JSON.parse(message.data));
  };
  stream.onerror = () => {
    streamUp = false; // the browser reconnects by itself
    showStatus();
  };
}

document.addEventListener("DOMContentLoaded", connect);
