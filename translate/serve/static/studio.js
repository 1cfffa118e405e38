// The studio page's behaviour, in plain JavaScript with no build step and nothing loaded from elsewhere.
// Drawings are sent 300 ms after the last change; a newer drawing aborts the request of an older one instead of
// queueing behind it, so the server only ever works for what is on the canvas now. Photos go one at a time, so a
// dropped folder does not fill the server's queue; a 503 is retried after the Retry-After it names.
// A model trained with colour hints gets a colour pen: its strokes go on a layer of their own over the drawing (never
// into the sketch) and are sent beside it as the `hints` field, an RGBA PNG of the sketch's size whose opaque pixels
// are the hints (translate/data/hints.py).
"use strict";

const DEBOUNCE_MS = 300;
// Stroke widths are given for a 256 px canvas and scale with the model's size; the default, 2, draws strokes as thin
// as the dataset edges sketch models learn from (1-2 px at 256): a thicker pen turned a drawn bag into mush.
const BASE_SIZE = 256;
// Hint strokes are about as wide as the larger colour patches the model saw in training (1-9 px at 256).
const HINT_WIDTH = 6;
// ... and at least 3 px on the canvas: a hint pixel must be at least half opaque, and an antialiased line of a
// 64 px model's 1.5 px would leave none that is.
const MIN_HINT_PX = 3;
const HINT_TOOLS = ["hint", "hint-eraser"];
const $ = (id) => document.getElementById(id);
const studio = {
  models: [], model: null, net: null, tool: "pen", strokes: [], stroke: null,
  timer: null, controller: null, photos: Promise.resolve(), outputUrl: null,
};

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

async function errorText(response) {
  try {
    return (await response.json()).detail; // every error of the server is {"detail": "<one string>"}
  } catch {
    return `${response.status} ${response.statusText}`;
  }
}

// POST one image (and its hint map, if any); resolves to a PNG blob, or throws an Error carrying the server's
// message.
async function translateBlob(blob, filename, model, net, signal, hints = null) {
  const form = new FormData();
  form.append("image", blob, filename);
  if (hints) form.append("hints", hints, "hints.png");
  form.append("model", model);
  form.append("net", net);
  for (let attempt = 0; ; attempt++) {
    // The header tells the server a script of its own page sent this (a form on another site cannot add one).
    const headers = { "X-Requested-With": "translate-studio" };
    const response = await fetch("/api/translate", { method: "POST", body: form, headers, signal });
    if (response.ok) return response.blob();
    const retryAfter = Number(response.headers.get("Retry-After"));
    if (response.status === 503 && retryAfter && attempt < 3) {
      await new Promise((resolve) => setTimeout(resolve, retryAfter * 1000));
      continue;
    }
    throw new Error(await errorText(response));
  }
}

// ---- model and direction picker, model card ----

async function loadModels() {
  const response = await fetch("/api/models");
  if (!response.ok) throw new Error(await errorText(response));
  studio.models = (await response.json()).models;
  $("model").replaceChildren(...studio.models.map((m) => new Option(m.name, m.name)));
  selectModel(studio.models[0].name);
}

function selectModel(name) {
  studio.model = studio.models.find((m) => m.name === name);
  $("net").replaceChildren(...studio.model.nets.map((n) => new Option(`${n.direction} (${n.name})`, n.name)));
  selectNet(studio.model.nets[0].name);
  showCard();
  resizeCanvas(studio.model.size);
}

function selectNet(name) {
  studio.net = name;
  showCard();
  showHintTools();
  scheduleDrawing();
}

function readsHints() {
  return Boolean(studio.model?.nets.find((n) => n.name === studio.net)?.hints);
}

// The colour pen and the hint layer only for a net that reads hints; hints painted for another stay, unseen and
// unsent, until a net that reads them is chosen again.
function showHintTools() {
  const on = readsHints();
  $("hint-tools").hidden = hintCanvas.hidden = !on;
  if (!on && HINT_TOOLS.includes(studio.tool)) setTool("pen");
}

function showCard() {
  const { card } = studio.model;
  const net = studio.model.nets.find((n) => n.name === studio.net);
  const entries = [
    ["model", card.model], ["export", studio.model.name],
    ["generator", `${net.arch}, ${net.in_channels} -> ${net.out_channels} channels`],
    ["mode", net.inference_mode], ["size multiple", net.size_multiple],
    ["steps", card.steps ?? "?"], ["data", card.data || "?"], ["input", card.input],
  ];
  if (net.hints) entries.push(["colour hints", "yes: paint them with the colour pen"]);
  if (card.scores) entries.push(["scores", Object.entries(card.scores).map(([k, v]) => `${k} ${v}`).join(", ")]);
  const list = document.createElement("dl");
  for (const [key, value] of entries) {
    const item = document.createElement("div");
    const dt = document.createElement("dt");
    const dd = document.createElement("dd");
    dt.textContent = key;
    dd.textContent = String(value);
    item.append(dt, dd);
    list.append(item);
  }
  $("card").replaceChildren(list);
  $("draw-hint").textContent = card.input === "sketch or label map"
    ? "This model translates sketches or label maps: draw one."
    : "This model expects photos; you can draw on it anyway.";
}

// ---- drawing ----

const canvas = $("canvas");
const ctx = canvas.getContext("2d");
const hintCanvas = $("hints");
const hintCtx = hintCanvas.getContext("2d");

// The canvas holds the model's input pixels (what is sent is what the model reads); on screen it is at least
// MIN_SCREEN px, so a 64 or 128 px model is drawn on at a size a hand can use.
const MIN_SCREEN = 512;
function resizeCanvas(size) {
  canvas.width = canvas.height = hintCanvas.width = hintCanvas.height = size;
  document.documentElement.style.setProperty("--size", `${Math.max(size, MIN_SCREEN)}px`);
  redraw();
}

// A stroke on its layer: the sketch's eraser paints white (the sketch is opaque), the hint eraser clears to
// transparent (no hint).
function paintStroke(stroke) {
  const target = stroke.layer === "hints" ? hintCtx : ctx;
  const scale = canvas.width / BASE_SIZE;
  target.globalCompositeOperation = stroke.tool === "hint-eraser" ? "destination-out" : "source-over";
  target.strokeStyle = target.fillStyle = stroke.tool === "eraser" ? "#ffffff" : stroke.color;
  target.lineWidth = Math.max(stroke.width * scale, stroke.layer === "hints" ? MIN_HINT_PX : 0);
  target.lineCap = target.lineJoin = "round";
  const points = stroke.points.map(([x, y]) => [x * canvas.width, y * canvas.height]);
  target.beginPath();
  target.moveTo(...points[0]);
  for (const point of points.slice(1)) target.lineTo(...point);
  if (points.length === 1) target.arc(...points[0], target.lineWidth / 2, 0, 2 * Math.PI);
  points.length === 1 ? target.fill() : target.stroke();
}

function redraw() {
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  hintCtx.clearRect(0, 0, hintCanvas.width, hintCanvas.height);
  studio.strokes.forEach(paintStroke);
}

function newStroke(tool, point) {
  const layer = HINT_TOOLS.includes(tool) ? "hints" : "sketch";
  const color = tool === "hint" ? $("hint-color").value : $("color").value; // the hint eraser's is not painted
  const width = layer === "sketch" ? Number($("width").value) : tool === "hint" ? HINT_WIDTH : 2 * HINT_WIDTH;
  return { tool, layer, color, width, points: [point] };
}

function hasHints() {
  return studio.strokes.some((stroke) => stroke.tool === "hint");
}

function pointOf(event) {
  const box = canvas.getBoundingClientRect();
  return [(event.clientX - box.left) / box.width, (event.clientY - box.top) / box.height];
}

canvas.addEventListener("pointerdown", (event) => {
  canvas.setPointerCapture(event.pointerId);
  studio.stroke = newStroke(studio.tool, pointOf(event));
  studio.strokes.push(studio.stroke);
  paintStroke(studio.stroke);
  scheduleDrawing();
});
canvas.addEventListener("pointermove", (event) => {
  if (!studio.stroke) return;
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
  studio.stroke.points.push(...(events.length ? events : [event]).map(pointOf));
  redraw();
  scheduleDrawing();
});
for (const type of ["pointerup", "pointercancel"]) {
  canvas.addEventListener(type, () => { studio.stroke = null; });
}

function scheduleDrawing() {
  clearTimeout(studio.timer);
  if (studio.model) studio.timer = setTimeout(sendDrawing, DEBOUNCE_MS);
}

// The drawing as a PNG blob, at once: toBlob waits for an idle moment, which measured a full second in headless
// Chromium (tools/serve_pen.py), twice the time the output may lag the pen; toDataURL encodes synchronously.
function canvasPng(source) {
  const base64 = source.toDataURL("image/png").split(",")[1];
  return new Blob([Uint8Array.from(atob(base64), (c) => c.charCodeAt(0))], { type: "image/png" });
}

async function sendDrawing() {
  studio.controller?.abort(); // the older drawing's answer is of no use any more
  const controller = (studio.controller = new AbortController());
  const blob = canvasPng(canvas);
  const hints = readsHints() && hasHints() ? canvasPng(hintCanvas) : null;
  try {
    setStatus("translating the drawing…");
    const png = await translateBlob(blob, "drawing.png", studio.model.name, studio.net, controller.signal, hints);
    if (controller.signal.aborted) return;
    const output = $("output");
    if (studio.outputUrl) URL.revokeObjectURL(studio.outputUrl);
    studio.outputUrl = URL.createObjectURL(png);
    output.onload = () => {
      output.dataset.version = String(Number(output.dataset.version) + 1);
      setStatus("");
    };
    output.src = studio.outputUrl;
  } catch (error) {
    if (error.name !== "AbortError") setStatus(error.message, true);
  }
}

function setTool(tool) {
  studio.tool = tool;
  for (const button of document.querySelectorAll("button.tool")) {
    button.setAttribute("aria-pressed", String(button.dataset.tool === tool));
  }
}

// Undo takes back the last stroke the person can see: hidden hints (a net that reads none) are left alone.
function undo() {
  const last = studio.strokes.findLastIndex((stroke) => stroke.layer === "sketch" || readsHints());
  if (last >= 0) studio.strokes.splice(last, 1);
  redraw();
  scheduleDrawing();
}

// A random saturated, mid-light colour (HSL with S 90%, L 50%): a pale or dark hint says little about the colour
// meant.
function randomColour() {
  const hue = Math.random() * 360;
  const channel = (n) => {
    const k = (n + hue / 30) % 12;
    const value = 0.5 - 0.45 * Math.max(-1, Math.min(k - 3, 9 - k, 1));
    return Math.round(value * 255).toString(16).padStart(2, "0");
  };
  return `#${channel(0)}${channel(8)}${channel(4)}`;
}

// "New colour": the same hints in a random colour (or, with none yet, one small hint at the centre), translated at
// once, to see what else the drawing could be.
function newColour() {
  const colour = ($("hint-color").value = randomColour());
  const hints = studio.strokes.filter((stroke) => stroke.tool === "hint");
  if (hints.length) hints.forEach((stroke) => { stroke.color = colour; });
  else studio.strokes.push(newStroke("hint", [0.5, 0.5])); // in the colour just picked
  redraw();
  clearTimeout(studio.timer);
  sendDrawing();
}

for (const button of document.querySelectorAll("button.tool")) {
  button.addEventListener("click", () => setTool(button.dataset.tool));
}
$("undo").addEventListener("click", undo);
$("clear").addEventListener("click", () => { studio.strokes = []; redraw(); scheduleDrawing(); });
$("clear-hints").addEventListener("click", () => {
  studio.strokes = studio.strokes.filter((stroke) => stroke.layer !== "hints");
  redraw();
  scheduleDrawing();
});
$("new-colour").addEventListener("click", newColour);
$("model").addEventListener("change", (event) => selectModel(event.target.value));
$("net").addEventListener("change", (event) => selectNet(event.target.value));

// ---- photos ----

function addPhoto(file) {
  const result = document.createElement("div");
  result.className = "result";
  const name = document.createElement("div");
  name.className = "name";
  name.textContent = `${file.name} — ${studio.model.name} ${studio.net}`;
  const message = document.createElement("div");
  message.className = "message";
  message.textContent = "waiting…";
  result.append(name, message);
  $("results").prepend(result);
  const model = studio.model.name, net = studio.net; // the choice made when the file was dropped
  studio.photos = studio.photos.then(async () => {
    message.textContent = "translating…";
    try {
      showComparison(result, file, await translateBlob(file, file.name, model, net), net);
      message.remove();
    } catch (error) {
      message.textContent = error.message;
      message.classList.add("error");
    }
  });
}

function showComparison(result, file, png, net) {
  const compare = document.createElement("div");
  compare.className = "compare";
  const before = new Image();
  before.className = "before";
  before.alt = `${file.name} (before)`;
  before.src = URL.createObjectURL(file);
  const after = new Image();
  after.className = "after";
  after.alt = `${file.name} translated (after)`;
  const url = URL.createObjectURL(png);
  after.src = url;
  const slider = document.createElement("input");
  slider.type = "range";
  slider.min = "0";
  slider.max = "100";
  slider.value = "50";
  slider.setAttribute("aria-label", "before / after");
  slider.addEventListener("input", () => compare.style.setProperty("--split", `${slider.value}%`));
  compare.append(before, after, slider);
  const actions = document.createElement("div");
  actions.className = "actions";
  const download = document.createElement("a");
  download.href = url;
  download.download = `${file.name.replace(/\.[^.]+$/, "")}_${net}.png`;
  download.textContent = "Download";
  const legend = document.createElement("span");
  legend.textContent = "left: before, right: after";
  actions.append(download, legend);
  result.append(compare, actions);
}

const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  [...event.dataTransfer.files].forEach(addPhoto);
});
$("files").addEventListener("change", (event) => {
  [...event.target.files].forEach(addPhoto);
  event.target.value = "";
});

redraw();
loadModels().catch((error) => setStatus(`cannot list the models: ${error.message}`, true));
