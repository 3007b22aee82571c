// The setup view's page: live picture, SVG overlay in normalized coordinates, pointer-event editing.
"use strict";
const NS = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);
const svg = $("overlay");
let shapes = {zones: [], lines: [], masks: []};
let tool = "select", drawing = [], selected = null, dragging = null, closed = false, dirty = false;

function el(name, attrs, parent) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.setAttribute("vector-effect", "non-scaling-stroke");
  parent.appendChild(e);
  return e;
}
function pts(points) { return points.map((p) => p[0] + "," + p[1]).join(" "); }
function norm(ev) {
  const r = svg.getBoundingClientRect();
  const c = (v) => Math.round(Math.min(1, Math.max(0, v)) * 10000) / 10000;
  return [c((ev.clientX - r.left) / r.width), c((ev.clientY - r.top) / r.height)];
}
function status(text, error) { $("status").textContent = text; $("status").className = error ? "err" : ""; }
function shapeOf(sel) { return sel ? (sel.kind === "mask" ? shapes.masks[sel.i] : shapes[sel.kind + "s"][sel.i]) : null; }
function pointsOf(sel) { const s = shapeOf(sel); return !s ? null : sel.kind === "zone" ? s.polygon : sel.kind === "line" ? s.points : s; }
function nextId(prefix, list) { let n = 1; while (list.some((s) => s.id === prefix + n)) n++; return prefix + n; }

function render() {
  for (const g of ["masks", "zones", "lines", "drawing", "handles"]) $(g).replaceChildren();
  shapes.masks.forEach((m, i) => el("polygon", {points: pts(m), class: "mask" + (isSel("mask", i) ? " sel" : ""), "data-kind": "mask", "data-i": i}, $("masks")));
  shapes.zones.forEach((z, i) => el("polygon", {points: pts(z.polygon), class: "zone" + (isSel("zone", i) ? " sel" : ""), "data-kind": "zone", "data-i": i}, $("zones")));
  shapes.lines.forEach((l, i) => {
    const [a, b] = l.points;
    el("line", {x1: a[0], y1: a[1], x2: b[0], y2: b[1], class: "line" + (isSel("line", i) ? " sel" : ""), "data-kind": "line", "data-i": i}, $("lines"));
    // "in" is from side A (left of a->b on screen) to side B: the arrow points into side B
    const mx = (a[0] + b[0]) / 2, my = (a[1] + b[1]) / 2, dx = b[0] - a[0], dy = b[1] - a[1];
    const len = Math.hypot(dx, dy) || 1, nx = -dy / len * 0.06, ny = dx / len * 0.06;
    el("line", {x1: mx - nx, y1: my - ny, x2: mx + nx, y2: my + ny, class: "arrow", "stroke-width": 2}, $("lines"));
    el("circle", {cx: mx + nx, cy: my + ny, r: 0.008, class: "arrow"}, $("lines"));
  });
  if (drawing.length) {
    if (tool === "line") el("polyline", {points: pts(drawing), class: "draft"}, $("drawing"));
    else el("polygon", {points: pts(drawing), class: "draft"}, $("drawing"));
  }
  const p = pointsOf(selected);
  if (p) p.forEach((q, j) => el("circle", {cx: q[0], cy: q[1], r: 0.012, class: "handle", "data-j": j}, $("handles")));
  const s = shapeOf(selected);
  $("shape-id").value = s && s.id !== undefined ? s.id : "";
  $("shape-id").disabled = !s || s.id === undefined;
}
function isSel(kind, i) { return selected && selected.kind === kind && selected.i === i; }

function setTool(t) {
  tool = t; drawing = [];
  for (const n of ["select", "zone", "line", "mask"]) $("tool-" + n).classList.toggle("on", n === t);
  render();
}
function changed() { dirty = true; render(); sendDraft(); }
function finish() {
  if (tool === "zone" && drawing.length >= 3) {
    shapes.zones.push({id: nextId("zone-", shapes.zones), polygon: drawing});
    selected = {kind: "zone", i: shapes.zones.length - 1};
  } else if (tool === "mask" && drawing.length >= 3) {
    shapes.masks.push(drawing);
    selected = {kind: "mask", i: shapes.masks.length - 1};
  } else if (tool === "line" && drawing.length === 2) {
    shapes.lines.push({id: nextId("line-", shapes.lines), points: drawing});
    selected = {kind: "line", i: shapes.lines.length - 1};
  } else return;
  drawing = [];
  changed();
}

svg.addEventListener("pointerdown", (ev) => {
  ev.preventDefault();
  const p = norm(ev);
  if (tool === "select") {
    const t = ev.target;
    if (t.classList.contains("handle")) {
      dragging = Number(t.getAttribute("data-j"));
      svg.setPointerCapture(ev.pointerId);
    } else if (t.hasAttribute("data-kind")) {
      selected = {kind: t.getAttribute("data-kind"), i: Number(t.getAttribute("data-i"))};
      render();
    } else { selected = null; render(); }
    return;
  }
  if ((tool === "zone" || tool === "mask") && drawing.length >= 3) {
    const f = drawing[0];
    if (Math.hypot(f[0] - p[0], f[1] - p[1]) < 0.02) { finish(); return; }  // back at the first corner
  }
  drawing.push(p);
  if (tool === "line" && drawing.length === 2) { finish(); return; }
  render();
});
svg.addEventListener("pointermove", (ev) => {
  if (dragging === null) return;
  const q = pointsOf(selected);
  if (q) { q[dragging] = norm(ev); render(); }
});
svg.addEventListener("pointerup", (ev) => {
  if (dragging !== null) { dragging = null; svg.releasePointerCapture(ev.pointerId); changed(); }
});

for (const n of ["select", "zone", "line", "mask"]) $("tool-" + n).addEventListener("click", () => setTool(n));
$("finish").addEventListener("click", finish);
$("flip").addEventListener("click", () => {
  if (selected && selected.kind === "line") { shapes.lines[selected.i].points.reverse(); changed(); }
});
$("delete").addEventListener("click", () => {
  if (!selected) return;
  (selected.kind === "mask" ? shapes.masks : shapes[selected.kind + "s"]).splice(selected.i, 1);
  selected = null; changed();
});
$("shape-id").addEventListener("change", () => {
  const s = shapeOf(selected);
  if (s && s.id !== undefined) { s.id = $("shape-id").value.trim(); changed(); }
});

async function post(path, doc) {
  const r = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify(doc), credentials: "same-origin"});
  let body = {};
  try { body = await r.json(); } catch (e) { /* a refusal has no JSON */ }
  return [r.status, body];
}
let draftTimer = null;
function sendDraft() {
  clearTimeout(draftTimer);
  draftTimer = setTimeout(async () => {
    const [code, body] = await post("/api/draft", shapes);
    if (code !== 200) status(body.error || ("not checked: HTTP " + code), true);
    else if (dirty) status("not saved yet");
  }, 300);
}
$("save").addEventListener("click", async () => {
  clearTimeout(draftTimer);  // the save checks and applies the same shapes
  const [code, body] = await post("/api/save", shapes);
  if (code === 200) { dirty = false; status(body.changed ? "saved" : "saved (no change)"); }
  else status(body.error || ("not saved: HTTP " + code), true);
});
$("done").addEventListener("click", async () => {
  if (dirty && !confirm("Close without saving the last changes?")) return;
  await post("/api/done", {});
  closed = true;
  status("closed; the picture is gone");
  $("picture").removeAttribute("src");
});

function drawBoxes(boxes) {
  $("boxes").replaceChildren();
  for (const b of boxes) el("rect", {x: b.x0, y: b.y0, width: b.x1 - b.x0, height: b.y1 - b.y0, class: "box"}, $("boxes"));
}
function drawCounts(counts) {
  const ul = $("counts");
  ul.replaceChildren();
  for (const z of shapes.zones) {
    const li = document.createElement("li");
    li.textContent = "zone " + z.id + ": " + (counts.zones[z.id] || 0) + " inside";
    li.id = "count-zone-" + z.id;
    ul.appendChild(li);
  }
  for (const l of shapes.lines) {
    const t = counts.lines[l.id] || {in: 0, out: 0};
    const li = document.createElement("li");
    li.textContent = "line " + l.id + ": in " + t.in + ", out " + t.out;
    li.id = "count-line-" + l.id;
    ul.appendChild(li);
  }
}
async function poll() {
  if (closed) return;
  try {
    const r = await fetch("/api/state", {credentials: "same-origin", cache: "no-store"});
    if (r.status !== 200) { closed = true; status("the view is closed (HTTP " + r.status + ")", true); $("picture").removeAttribute("src"); return; }
    const s = await r.json();
    $("remaining").textContent = s.remaining_s;
    if (s.width && s.height) $("stage").style.aspectRatio = s.width + "/" + s.height;
    drawBoxes(s.boxes);
    drawCounts(s.counts);
    if (s.error) status(s.error, true);
    $("picture").src = "/frame.jpg?n=" + s.frames;
  } catch (e) { status("lost the device: " + e, true); }
  setTimeout(poll, 250);
}
(async () => {
  const r = await fetch("/api/shapes", {credentials: "same-origin", cache: "no-store"});
  if (r.status === 200) shapes = await r.json();
  render();
  document.body.setAttribute("data-ready", "1");
  poll();
})();
