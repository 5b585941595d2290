// Drawing pad -> debounced POST /api/v1/predict (or /read in word mode) -> top-5 bars and the 28×28 input
// (word mode: the text, its alternatives and each character's confidence).
"use strict";
const pad = document.getElementById("pad");
const ctx = pad.getContext("2d");
const $ = (id) => document.getElementById(id);
const STROKE = 18;            // pixels on the 280-pixel pad: ~2 pixels of 28 after scaling, like EMNIST's pen
const DEBOUNCE_MS = 150;
let strokes = [];             // each stroke: list of [x, y] in canvas pixels
let current = null;
let timer = null;
let sequence = 0;             // only the newest response is shown
let inFlight = null;          // the AbortController of the request under way

function redraw() {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, pad.width, pad.height);
  ctx.strokeStyle = "#000";
  ctx.fillStyle = "#000";
  ctx.lineWidth = STROKE;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  for (const s of strokes) {
    if (s.length === 1) {     // a tap is a dot
      ctx.beginPath();
      ctx.arc(s[0][0], s[0][1], STROKE / 2, 0, 2 * Math.PI);
      ctx.fill();
      continue;
    }
    ctx.beginPath();
    ctx.moveTo(s[0][0], s[0][1]);
    for (const [x, y] of s.slice(1)) ctx.lineTo(x, y);
    ctx.stroke();
  }
}

function point(e) {
  const r = pad.getBoundingClientRect();
  return [(e.clientX - r.left) * pad.width / r.width, (e.clientY - r.top) * pad.height / r.height];
}

pad.addEventListener("pointerdown", (e) => {
  pad.setPointerCapture(e.pointerId);
  current = [point(e)];
  strokes.push(current);
  redraw();
  schedule();
});
pad.addEventListener("pointermove", (e) => {
  if (!current) return;
  current.push(point(e));
  redraw();
  schedule();
});
for (const ev of ["pointerup", "pointercancel"]) {
  pad.addEventListener(ev, () => { if (current) { current = null; schedule(); } });
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(recognise, DEBOUNCE_MS);
}

function endpoint() {
  const model = $("model").value;
  const path = $("word-mode").checked ? "read" : "predict";
  const charset = $("charset").value;
  return `/api/v1/${path}?top_k=5` + (model ? `&model=${encodeURIComponent(model)}` : "") +
    (charset ? `&charset=${encodeURIComponent(charset)}` : "");
}

function message(detail) {  // a string, or FastAPI's list of validation errors
  return Array.isArray(detail) ? detail.map((d) => d.msg).join("; ") : detail;
}

function cancel() {           // a late answer must never land on a canvas that has changed since
  sequence++;
  if (inFlight) inFlight.abort();
  inFlight = null;
}

async function send(body, json) {
  cancel();
  const id = sequence;
  const controller = inFlight = new AbortController();
  $("status").textContent = "recognising…";
  let reply, answer;
  try {
    reply = await fetch(endpoint(), json
      ? { method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "application/json" },
          signal: controller.signal }
      : { method: "POST", body, signal: controller.signal });
    answer = await reply.json();
  } catch (err) {
    if (id === sequence) $("status").textContent = `request failed: ${err}`;
    return;
  }
  if (id !== sequence) return;
  inFlight = null;
  if (!reply.ok) { show(null); $("status").textContent = message(answer.detail) || `error ${reply.status}`; return; }
  $("status").textContent = `model ${answer.model}` + (answer.reader ? ` (reads ${answer.reader})` : "");
  show(answer);
}

function sendFile(file) {
  const form = new FormData();
  form.append("file", file, file.name || "image.png");
  send(form, false);
}

function recognise() {
  if (!strokes.length) {
    cancel();
    show(null);
    $("status").textContent = $("word-mode").checked ? "Write a word or a number." : "Draw a character.";
    return;
  }
  // toDataURL is synchronous: toBlob waits for the browser to go idle (about a second after pen-up in Chromium)
  send({ image: pad.toDataURL("image/png") }, true);
}

function bars(list, predictions) {
  list.replaceChildren(...predictions.map((p) => {
    const li = document.createElement("li");
    const pct = (100 * p.probability).toFixed(1);
    li.innerHTML = `<span class="char"></span><div class="bar" style="width:${pct}%"></div><span>${pct}%</span>`;
    li.firstChild.textContent = p.character;
    return li;
  }));
}

function show(body) {
  const seen = $("seen").getContext("2d");
  seen.clearRect(0, 0, 28, 28);
  $("characters").replaceChildren();
  if (!body) { $("answer").innerHTML = "&nbsp;"; $("predictions").replaceChildren(); return; }
  if (body.text !== undefined) {          // word mode
    $("answer").textContent = body.text || "\u00a0";
    const alternatives = body.lines.flatMap((line) => line.alternatives.slice(1));
    $("predictions").classList.add("words");
    bars($("predictions"), alternatives.map((a) => ({ character: a.text, probability: a.probability })));
    $("characters").replaceChildren(...body.characters.map((c) => {
      const li = document.createElement("li");
      li.textContent = `${c.character} ${(100 * c.confidence).toFixed(0)}%`;
      return li;
    }));
    return;
  }
  $("predictions").classList.remove("words");
  $("answer").textContent = body.predictions[0].character;
  bars($("predictions"), body.predictions);
  const img = seen.createImageData(28, 28);
  body.input.flat().forEach((v, i) => { img.data.set([v, v, v, 255], 4 * i); });
  seen.putImageData(img, 0, 0);
}

$("undo").addEventListener("click", () => { strokes.pop(); redraw(); schedule(); });
$("clear").addEventListener("click", () => { strokes = []; redraw(); schedule(); });
$("upload").addEventListener("change", (e) => {
  const file = e.target.files[0];
  if (!file) return;
  strokes = [];
  const url = URL.createObjectURL(file);
  const im = new Image();
  im.onload = () => {       // show the upload on the pad, and send the original file
    redraw();
    const f = Math.min(pad.width / im.width, pad.height / im.height);
    ctx.drawImage(im, (pad.width - im.width * f) / 2, (pad.height - im.height * f) / 2, im.width * f, im.height * f);
    URL.revokeObjectURL(url);
  };
  im.src = url;
  sendFile(file);
  e.target.value = "";
});
$("word-mode").addEventListener("change", (e) => {
  pad.width = e.target.checked ? 840 : 280;
  document.querySelector("figure").hidden = e.target.checked;  // word mode shows characters, not one input
  strokes = [];
  redraw();
  recognise();
});
$("model").addEventListener("change", schedule);
$("charset").addEventListener("change", schedule);

fetch("/api/v1/models").then((r) => r.json()).then((info) => {
  $("model").replaceChildren(...info.models.map((m) => new Option(m.name, m.name, m.name === info.default)));
});
redraw();
