// digitrec's drawing page. Plain JavaScript, no dependencies, no build step.
//
// Strokes are kept as points in "picture units": the size of the picture the page sends
// (280x280 for one digit, 560x280 for a number), whatever the size the pad is shown at, so
// the pen width, undo and the boxes of a number do not depend on the screen.
"use strict";

const SIZES = { digit: [280, 280], number: [560, 280] };
const PEN = 1 / 16; // pen width as a share of the picture's height: a marker-like stroke
const THROTTLE_MS = 90; // at most ~11 readings a second while the pen moves
const SEND_TYPES = ["image/png", "image/jpeg", "image/webp", "image/bmp"];
// Why a reading may be refused, in the server's words (it puts them in the page): a reading
// carries its own `message`, but a blank number has no digit to carry one.
const REASONS = JSON.parse(document.body.dataset.reasons || "{}");

const $ = (id) => document.getElementById(id);
const pad = $("pad");
const overlay = $("overlay");
const stage = $("stage");
const result = $("result");

const state = {
  mode: "digit",
  strokes: [], // each an array of [x, y] in picture units
  drawing: null, // the pointerId of the stroke being drawn
  picture: null, // an uploaded picture: { blob, bitmap, width, height }
  seq: 0, // readings asked for
  shown: 0, // the newest reading on screen: an older answer is never shown over it
  timer: null,
  last: null, // the reading on screen: { mode, source, body }
  selected: null, // number mode: the index of the digit picked for feedback
  maxBody: 5 * 1024 * 1024,
};

// ------------------------------------------------------------------ drawing

function size() {
  return SIZES[state.mode];
}

function isEmpty() {
  return state.strokes.length === 0 && !state.picture;
}

// Where an uploaded picture sits in the pad: fitted inside, centred, in picture units.
function pictureFit() {
  const [W, H] = size();
  const p = state.picture;
  const k = Math.min(W / p.width, H / p.height);
  const w = p.width * k;
  const h = p.height * k;
  return { x: (W - w) / 2, y: (H - h) / 2, w, h, k };
}

function paint(ctx, W, H) {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, W, H);
  if (state.picture) {
    const f = pictureFit();
    ctx.drawImage(state.picture.bitmap, f.x, f.y, f.w, f.h);
  }
  ctx.strokeStyle = "#000";
  ctx.fillStyle = "#000";
  ctx.lineWidth = H * PEN;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  for (const s of state.strokes) {
    ctx.beginPath();
    if (s.length === 1) {
      ctx.arc(s[0][0], s[0][1], ctx.lineWidth / 2, 0, 2 * Math.PI);
      ctx.fill();
      continue;
    }
    ctx.moveTo(s[0][0], s[0][1]);
    // quadratic curves through the midpoints: smooth strokes from coarse pointer samples
    for (let i = 1; i < s.length - 1; i++) {
      const mx = (s[i][0] + s[i + 1][0]) / 2;
      const my = (s[i][1] + s[i + 1][1]) / 2;
      ctx.quadraticCurveTo(s[i][0], s[i][1], mx, my);
    }
    const end = s[s.length - 1];
    ctx.lineTo(end[0], end[1]);
    ctx.stroke();
  }
}

function render() {
  const [W, H] = size();
  const ctx = pad.getContext("2d");
  const k = pad.width / W;
  ctx.setTransform(k, 0, 0, k, 0, 0);
  paint(ctx, W, H);
  stage.classList.toggle("inked", !isEmpty());
  // for tests and assistive tools: how many strokes the pad holds, and whether one is open
  stage.dataset.strokes = String(state.strokes.length);
  stage.dataset.drawing = state.drawing === null ? "0" : "1";
  drawBoxes();
}

function fitBacking() {
  const dpr = window.devicePixelRatio || 1;
  const rect = stage.getBoundingClientRect();
  for (const c of [pad, overlay]) {
    c.width = Math.max(1, Math.round(rect.width * dpr));
    c.height = Math.max(1, Math.round(rect.height * dpr));
  }
  render();
}

function toUnits(e) {
  const rect = pad.getBoundingClientRect();
  const [W, H] = size();
  return [((e.clientX - rect.left) / rect.width) * W, ((e.clientY - rect.top) / rect.height) * H];
}

pad.addEventListener("pointerdown", (e) => {
  if (e.pointerType === "mouse" && e.button !== 0) return;
  if (state.drawing !== null) return; // a second finger does not start a second stroke
  e.preventDefault();
  pad.setPointerCapture(e.pointerId);
  state.drawing = e.pointerId;
  state.strokes.push([toUnits(e)]);
  clearBoxes();
  render();
  schedule(THROTTLE_MS);
});

pad.addEventListener("pointermove", (e) => {
  if (e.pointerId !== state.drawing) return;
  e.preventDefault();
  const stroke = state.strokes[state.strokes.length - 1];
  const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [];
  for (const ev of events.length ? events : [e]) stroke.push(toUnits(ev));
  render();
  schedule(THROTTLE_MS);
});

function endStroke(e) {
  if (e.pointerId !== state.drawing) return;
  state.drawing = null;
  stage.dataset.drawing = "0";
  schedule(0);
}
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);
// a pointer whose capture is lost without an up or cancel (the window lost focus, the
// browser took the gesture) must not leave the pad ignoring every later stroke
pad.addEventListener("lostpointercapture", endStroke);

function undo() {
  if (state.strokes.length) state.strokes.pop();
  else if (state.picture) state.picture = null;
  else return;
  changed();
}

function clearAll() {
  state.strokes = [];
  state.picture = null;
  changed();
}

function changed() {
  clearBoxes();
  render();
  schedule(0);
}

// ------------------------------------------------------------------ what is sent

function pictureCanvas() {
  const [W, H] = size();
  const c = document.createElement("canvas");
  c.width = W;
  c.height = H;
  paint(c.getContext("2d"), W, H);
  return c;
}

// The canvas as a file, encoded at once. Not canvas.toBlob: Chromium encodes that in an
// idle period, and a page that has just stopped drawing has none until its one-second
// fallback, so the reading after the pen lifts came a second late (on a loaded machine,
// later still). Encoding the pad takes 1-3 ms.
function encode(canvas, type = "image/png", quality) {
  const url = canvas.toDataURL(type, quality);
  const comma = url.indexOf(",");
  const bytes = atob(url.slice(comma + 1));
  const data = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) data[i] = bytes.charCodeAt(i);
  // a browser that cannot write `type` writes PNG: the file says what it holds
  return new Blob([data], { type: url.slice(5, url.indexOf(";")) });
}

// The picture to read: the uploaded file as it is when nothing was drawn over it (boxes
// then come back in its own pixels), else the pad as a PNG.
function source() {
  if (state.picture && state.strokes.length === 0) {
    return { blob: state.picture.blob, space: "picture" };
  }
  const canvas = pictureCanvas();
  return { blob: encode(canvas), space: "pad", canvas };
}

// A box from the answer, in picture units of the pad.
function boxOnPad(box, src) {
  const [l, t, r, b] = box;
  if (src.space === "pad") return { x: l, y: t, w: r - l, h: b - t };
  const f = pictureFit();
  return { x: f.x + l * f.k, y: f.y + t * f.k, w: (r - l) * f.k, h: (b - t) * f.k };
}

// ------------------------------------------------------------------ reading

function schedule(delay) {
  if (delay === 0) {
    clearTimeout(state.timer);
    state.timer = setTimeout(read, 0);
  } else if (state.timer === null) {
    state.timer = setTimeout(read, delay); // throttle: keep the pending one
  }
  updateBusy();
}

// Busy while the newest reading asked for (or about to be) is not the one on screen.
function updateBusy() {
  result.dataset.busy = state.timer !== null || state.shown < state.seq ? "1" : "0";
}

async function read() {
  state.timer = null;
  const seq = ++state.seq;
  const mode = state.mode;
  if (isEmpty()) {
    state.shown = seq;
    showEmpty();
    return;
  }
  updateBusy();
  const src = source();
  const form = new FormData();
  form.append("file", src.blob, "canvas.png");
  let response, body;
  try {
    response = await fetch(mode === "digit" ? "/api/predict" : "/api/read-number", {
      method: "POST",
      body: form,
    });
    body = await response.json();
  } catch (err) {
    if (seq > state.shown) {
      state.shown = seq;
      showError("The server cannot be reached. Is digitrec serve still running?");
    }
    updateBusy();
    return;
  }
  if (seq <= state.shown) return updateBusy(); // a newer answer is already on screen
  state.shown = seq;
  updateBusy();
  if (!response.ok) {
    showError(body.error ? body.error.message : `the server answered ${response.status}`);
    return;
  }
  state.last = { mode, source: src, body };
  result.dataset.seq = String(seq);
  if (mode === "digit") showDigit(body);
  else showNumber(body, src);
  updateFeedback();
}

function percent(p) {
  return `${(100 * p).toFixed(p >= 0.999 || p < 0.001 ? 0 : 1)}%`;
}

function setAnswer(stateName, text, detail = "") {
  result.dataset.state = stateName;
  result.dataset.mode = state.mode;
  $("answer").textContent = text;
  $("detail").textContent = detail;
  if (state.drawing === null) $("summary").textContent = `${text}. ${detail}`;
}

function showEmpty() {
  state.last = null;
  state.selected = null;
  updateBusy();
  setAnswer("empty", "Nothing to read yet", "");
  setBars(null);
  $("seen").hidden = true;
  $("digits").replaceChildren();
  clearBoxes();
  setStatus("status", "");
  updateFeedback();
}

function showError(message) {
  state.last = null;
  updateBusy();
  setAnswer("error", "Could not read this picture", "");
  setStatus("status", message, "error");
  setBars(null);
  $("seen").hidden = true;
  $("digits").replaceChildren();
  clearBoxes();
  updateFeedback();
}

function sentence(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function modelLine(body) {
  return `${body.model.name} ${body.model.version || ""} · ${body.elapsed_ms.toFixed(1)} ms`;
}

function showDigit(body) {
  setStatus("status", "");
  if (body.refused) {
    setAnswer("refused", sentence(body.message), modelLine(body));
    setBars(body.probabilities, null);
  } else {
    setAnswer("read", String(body.digit), `${percent(body.confidence)} sure · ${modelLine(body)}`);
    setBars(body.probabilities, body.digit);
  }
  const seen = $("seen");
  if (body.input) {
    seen.src = body.input;
    seen.hidden = false;
  } else {
    seen.hidden = true;
  }
}

function setBars(probabilities, top) {
  const items = $("bars").children;
  for (let d = 0; d < 10; d++) {
    const li = items[d];
    const p = probabilities ? probabilities[d] : 0;
    li.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
    li.querySelector(".pct").textContent = probabilities ? percent(p) : "";
    const track = li.querySelector(".track");
    track.setAttribute("aria-valuenow", (100 * p).toFixed(1));
    track.setAttribute("aria-valuetext", `${d}: ${percent(p)}`);
    li.classList.toggle("best", top === d);
  }
}

function showNumber(body, src) {
  setStatus("status", "");
  state.selected = null;
  if (body.digits.length === 0) {
    setAnswer("refused", sentence(REASONS[body.reason] || body.reason), modelLine(body));
  } else {
    const unread = body.digits.filter((d) => d.refused).length;
    const detail = unread
      ? `? marks ${unread === 1 ? "a digit" : `${unread} digits`} it would not read · `
      : "";
    setAnswer("read", body.written.replace(/\n/g, " / "), detail + modelLine(body));
  }
  const list = $("digits");
  list.replaceChildren(
    ...body.digits.map((d, i) => {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button";
      b.setAttribute("aria-pressed", "false");
      b.classList.toggle("refused", d.refused);
      const label = d.refused ? `unread (${d.message})` : d.digit;
      b.setAttribute("aria-label", `Digit ${i + 1}: ${label}, ${percent(d.confidence)}`);
      if (d.input) {
        const img = document.createElement("img");
        img.src = d.input;
        img.alt = "";
        b.append(img);
      }
      const dg = document.createElement("span");
      dg.className = "dg";
      dg.textContent = d.refused ? "?" : String(d.digit);
      const cf = document.createElement("span");
      cf.className = "cf";
      cf.textContent = percent(d.confidence);
      b.append(dg, cf);
      b.addEventListener("click", () => select(i));
      li.append(b);
      return li;
    }),
  );
  drawBoxes();
}

function select(i) {
  state.selected = state.selected === i ? null : i;
  [...$("digits").querySelectorAll("button")].forEach((b, j) =>
    b.setAttribute("aria-pressed", String(j === state.selected)),
  );
  drawBoxes();
  updateFeedback();
}

function clearBoxes() {
  const ctx = overlay.getContext("2d");
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, overlay.width, overlay.height);
}

// Each digit of a number, boxed on the pad with what it was read as and how surely.
function drawBoxes() {
  clearBoxes();
  const last = state.last;
  if (!last || last.mode !== "number" || state.mode !== "number" || state.drawing !== null) return;
  const [W] = size();
  const k = overlay.width / W;
  const ctx = overlay.getContext("2d");
  ctx.setTransform(k, 0, 0, k, 0, 0);
  const font = 13;
  ctx.font = `600 ${font}px system-ui, sans-serif`;
  ctx.textBaseline = "top";
  last.body.digits.forEach((d, i) => {
    const b = boxOnPad(d.box, last.source);
    const colour = d.refused ? "#a0400b" : "#0b57d0";
    ctx.lineWidth = i === state.selected ? 3 : 1.5;
    ctx.strokeStyle = colour;
    ctx.setLineDash(d.refused ? [5, 4] : []);
    ctx.strokeRect(b.x - 3, b.y - 3, b.w + 6, b.h + 6);
    ctx.setLineDash([]);
    const text = `${d.refused ? "?" : d.digit} ${percent(d.confidence)}`;
    const tw = ctx.measureText(text).width + 8;
    const ty = b.y - 3 - font - 6 >= 0 ? b.y - 3 - font - 6 : b.y + b.h + 4;
    ctx.fillStyle = colour;
    ctx.fillRect(b.x - 3, ty, tw, font + 6);
    ctx.fillStyle = "#fff";
    ctx.fillText(text, b.x + 1, ty + 3);
  });
}

// ------------------------------------------------------------------ feedback

function updateFeedback() {
  const last = state.last;
  let target = "Draw something first.";
  let ready = false;
  if (last && last.mode === "digit" && last.body.reason !== "blank") {
    ready = true;
    target = last.body.refused
      ? "Tell it which digit this is."
      : `It read ${last.body.digit}. If that is wrong, pick the right digit.`;
  } else if (last && last.mode === "number" && last.body.digits.length) {
    ready = state.selected !== null;
    target = ready
      ? `Correcting digit ${state.selected + 1} of ${last.body.digits.length}.`
      : "Pick a digit above, then the digit it really is.";
  }
  $("feedback-target").textContent = target;
  for (const b of $("feedback-buttons").children) b.disabled = !ready;
}

// One digit of a number, cut out of what was sent with a margin, as a PNG.
async function digitCrop(last, digit) {
  const [l, t, r, b] = digit.box;
  let from;
  if (last.source.space === "pad") {
    from = last.source.canvas;
  } else {
    const p = state.picture;
    from = document.createElement("canvas");
    from.width = p.width;
    from.height = p.height;
    from.getContext("2d").drawImage(p.bitmap, 0, 0);
  }
  const m = Math.round(0.2 * Math.max(r - l, b - t));
  const c = document.createElement("canvas");
  c.width = r - l + 2 * m;
  c.height = b - t + 2 * m;
  const ctx = c.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, c.width, c.height);
  ctx.drawImage(from, l - m, t - m, c.width, c.height, 0, 0, c.width, c.height);
  return encode(c);
}

async function sendFeedback(label) {
  const last = state.last;
  if (!last) return;
  let blob, predicted;
  if (last.mode === "digit") {
    blob = last.source.blob;
    predicted = last.body.refused ? null : last.body.digit;
  } else {
    if (state.selected === null) return;
    const d = last.body.digits[state.selected];
    blob = await digitCrop(last, d);
    predicted = d.refused ? null : d.digit;
  }
  const form = new FormData();
  form.append("file", blob, "sample.png");
  form.append("label", String(label));
  if (predicted !== null) form.append("predicted", String(predicted));
  setStatus("feedback-status", "Saving…");
  try {
    const response = await fetch("/api/feedback", { method: "POST", body: form });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error ? body.error.message : response.statusText);
    setStatus("feedback-status", `Saved as a ${label} (sample #${body.id}). Thank you!`, "ok");
    $("feedback-status").dataset.id = String(body.id);
  } catch (err) {
    setStatus("feedback-status", `Not saved: ${err.message}`, "error");
  }
}

// ------------------------------------------------------------------ uploads

async function loadPicture(file) {
  if (!file) return;
  if (file.type && !file.type.startsWith("image/")) {
    showError(`${file.name || "That file"} is not a picture: use PNG, JPEG, WebP or BMP.`);
    return;
  }
  let bitmap;
  try {
    bitmap = await createImageBitmap(file); // turned upright from EXIF, as the server does
  } catch (err) {
    showError(`${file.name || "The picture"} cannot be read: use PNG, JPEG, WebP or BMP.`);
    return;
  }
  let blob = file;
  // A phone photo can be over the server's limit; the model needs far fewer pixels.
  if (file.size > state.maxBody || !SEND_TYPES.includes(file.type)) {
    const k = Math.min(1, 2048 / Math.max(bitmap.width, bitmap.height));
    const c = document.createElement("canvas");
    c.width = Math.round(bitmap.width * k);
    c.height = Math.round(bitmap.height * k);
    c.getContext("2d").drawImage(bitmap, 0, 0, c.width, c.height);
    blob = encode(c, "image/jpeg", 0.92);
    bitmap = await createImageBitmap(blob);
  }
  state.picture = { blob, bitmap, width: bitmap.width, height: bitmap.height };
  state.strokes = [];
  setStatus("status", `Reading ${file.name || "the picture"}…`);
  changed();
}

$("file").addEventListener("change", (e) => {
  loadPicture(e.target.files[0]);
  e.target.value = ""; // the same file again is a new upload
});

stage.addEventListener("dragover", (e) => {
  e.preventDefault();
  stage.classList.add("dragging");
});
stage.addEventListener("dragleave", () => stage.classList.remove("dragging"));
stage.addEventListener("drop", (e) => {
  e.preventDefault();
  stage.classList.remove("dragging");
  loadPicture(e.dataTransfer.files[0]);
});
document.addEventListener("paste", (e) => {
  const item = [...(e.clipboardData ? e.clipboardData.items : [])].find((i) => i.kind === "file");
  if (item) loadPicture(item.getAsFile());
});

// ------------------------------------------------------------------ controls

function setMode(mode) {
  if (mode === state.mode) return;
  const fits = state.strokes.every((s) => s.every(([x]) => x <= SIZES[mode][0]));
  if (!fits) state.strokes = [];
  state.mode = mode;
  $(`mode-${mode}`).checked = true;
  stage.dataset.mode = mode;
  $("hint").textContent = mode === "digit" ? "Draw a digit here" : "Draw a number here";
  $("digit-view").hidden = mode !== "digit";
  $("number-view").hidden = mode !== "number";
  state.last = null;
  state.selected = null;
  fitBacking();
  schedule(0);
}

function setStatus(id, text, kind = "") {
  const el = $(id);
  el.textContent = text;
  el.className = `status ${kind}`;
}

for (const input of document.querySelectorAll('input[name="mode"]')) {
  input.addEventListener("change", () => setMode(input.value));
}
$("undo").addEventListener("click", undo);
$("clear").addEventListener("click", clearAll);

document.addEventListener("keydown", (e) => {
  const typing = e.target instanceof HTMLInputElement && e.target.type !== "radio";
  if (typing) return;
  const key = e.key.toLowerCase();
  if ((e.ctrlKey || e.metaKey) && key === "z") {
    e.preventDefault();
    undo();
  } else if (e.ctrlKey || e.metaKey || e.altKey) {
    return;
  } else if (key === "escape" || key === "delete") {
    clearAll();
  } else if (key === "m") {
    setMode(state.mode === "digit" ? "number" : "digit");
  } else if (key === "u") {
    $("file").click();
  }
});

function buildStatic() {
  const bars = $("bars");
  for (let d = 0; d < 10; d++) {
    const li = document.createElement("li");
    li.innerHTML =
      `<span class="d">${d}</span>` +
      `<span class="track" role="meter" aria-label="probability of ${d}" ` +
      `aria-valuemin="0" aria-valuemax="100" aria-valuenow="0"><span class="fill"></span></span>` +
      `<span class="pct"></span>`;
    bars.append(li);
  }
  const buttons = $("feedback-buttons");
  for (let d = 0; d < 10; d++) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = String(d);
    b.dataset.digit = String(d);
    b.setAttribute("aria-label", `It was a ${d}`);
    b.disabled = true;
    b.addEventListener("click", () => sendFeedback(d));
    buttons.append(b);
  }
}

async function loadInfo() {
  try {
    const response = await fetch("/api/info");
    const info = await response.json();
    state.maxBody = info.limits.max_body_bytes;
    $("model").textContent = `model ${info.model.name} ${info.model.version || ""}, digitrec ${info.version}`;
  } catch (err) {
    $("model").textContent = "model information unavailable";
  }
}

buildStatic();
new ResizeObserver(fitBacking).observe(stage);
fitBacking();
showEmpty();
loadInfo().then(() => {
  document.body.dataset.ready = "1";
});
