/**
 * The page of `npm run web`: a .mcnc file (bundled or dropped) is decoded and rebuilt in the browser,
 * its size shown beside the float32 model's, and then used: an image classifier on a drawing and on
 * test images it never saw, a GPT generating text (with an adapter dropped on it, or without). It
 * imports what any web page would: mcnc/browser.
 */
import { numpy as np, tree } from "@jax-js/jax";
import { checkBase, decodeModelFile, generate, gptDecoder, initEngine, timedRebuild, toDevice, type HostParams, type LoadedModel, type Params } from "mcnc/browser";

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const status = (text: string, state?: string) => {
  $("status").textContent = text;
  if (state) document.body.dataset.state = state;
};
const number = (n: number) => n.toLocaleString("en-US");

const FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];
/** Fashion-MNIST's training-set pixel statistics, for files that predate recording them. */
const FASHION_NORMALISATION = { mean: 0.286, std: 0.353 };

interface Current {
  loaded: LoadedModel;
  params: Params;
}
let current: Current | undefined;
/** The last model loaded that is not an adapter: what a dropped adapter is rebuilt on. */
let base: { name: string; weights: HostParams; bytes: number } | undefined;

/** An image classifier's description (the page shows the vision panel only for those). */
function imageModel(loaded: LoadedModel): { input: [number, number, number]; classes: number } {
  const d = loaded.file.model;
  if (d.name !== "mlp" && d.name !== "lenet" && d.name !== "sequential") throw new Error(`${loaded.model.name} does not classify images`);
  // A table's model is scaled per column: it reads rows, not pictures.
  if (Array.isArray((loaded.file.meta?.normalisation as { mean?: unknown } | undefined)?.mean)) throw new Error(`${loaded.model.name} classifies table rows, not images`);
  if (d.input[2] !== 1) throw new Error(`the drawing pad and the samples are grey; this model reads ${d.input[2]} channels`);
  return { input: [...d.input], classes: d.classes };
}

function classNames(loaded: LoadedModel, classes: number): string[] {
  const named = loaded.file.meta?.classes;
  if (Array.isArray(named) && named.length === classes) return named.map(String);
  return loaded.file.meta?.dataset === "fashion-mnist" ? FASHION : Array.from({ length: classes }, (_, i) => `class ${i}`);
}

/** Class probabilities for n images of raw pixels (0..255, one channel), normalised as in training. */
async function classify(c: Current, pixels: Float32Array, n: number): Promise<Float32Array[]> {
  const d = imageModel(c.loaded);
  const norm = (c.loaded.file.meta?.normalisation as { mean: number; std: number } | undefined) ?? FASHION_NORMALISATION;
  const x = np.array(pixels.map((p) => (p / 255 - norm.mean) / norm.std)).reshape([n, ...d.input]);
  const logits = (await c.loaded.model.apply(tree.ref(c.params), x).data()) as Float32Array;
  return Array.from({ length: n }, (_, i) => {
    const row = logits.subarray(i * d.classes, (i + 1) * d.classes);
    const max = Math.max(...row);
    const e = row.map((v) => Math.exp(v - max));
    const sum = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / sum);
  });
}

/** The sizes table; `onBase`: the base file an adapter needs beside it. */
function showSizes(loaded: LoadedModel, fileBytes: number, ms: number, onBase?: { name: string; bytes: number }): void {
  const params = loaded.model.specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
  const dense = 4 * params;
  const ratio = dense / fileBytes;
  const rows: Array<[string, string, number | undefined]> = [
    ["this file", `${number(fileBytes)} bytes`, fileBytes],
    ["the same network in float32", `${number(dense)} bytes`, dense],
    [ratio >= 1 ? "smaller by" : "larger by", `${(ratio >= 1 ? ratio : 1 / ratio).toFixed(1)}x`, undefined],
    ...(onBase ? ([["an adapter: it needs its base beside it", `${onBase.name}, ${number(onBase.bytes)} bytes`, onBase.bytes]] as Array<[string, string, number]>) : []),
    ["weights rebuilt", `${number(params)} (${loaded.model.name}, method ${loaded.method.name})`, undefined],
    ["rebuild time here", `${ms.toFixed(0)} ms (generator regenerated from the seed, programs compiled)`, undefined],
  ];
  const table = $<HTMLTableElement>("sizes");
  table.innerHTML = "";
  for (const [label, value, bytes] of rows) {
    const tr = table.insertRow();
    tr.insertCell().textContent = label;
    const v = tr.insertCell();
    v.className = "n";
    v.textContent = value;
    const bar = tr.insertCell();
    // Bars on a linear scale: a file 90x smaller is drawn 90x shorter (2 px at least, to be seen).
    if (bytes !== undefined) bar.innerHTML = `<div class="bar${bytes === dense ? " dense" : ""}" style="width:${Math.max(2, (300 * bytes) / Math.max(dense, bytes))}px"></div>`;
  }
  table.classList.remove("hidden");
}

/** An error about file `name`, named once (the readers' messages start with the name already). */
const named = (name: string, e: unknown) => {
  const message = (e as Error).message;
  return message.startsWith(`${name}:`) ? message : `${name}: ${message}`;
};

/** Rebuilds and shows a model; false when it was refused (the status says why). */
async function load(bytes: Uint8Array, name: string): Promise<boolean> {
  status(`rebuilding ${name}…`, "loading");
  // The previous model's panels and sizes go: an error must not sit above another model's numbers.
  for (const id of ["vision", "language", "sizes"]) $(id).classList.add("hidden");
  if (current) tree.dispose(current.params);
  current = undefined;
  let loaded: LoadedModel;
  try {
    loaded = decodeModelFile(bytes, name);
  } catch (e) {
    status(named(name, e), "error");
    return false;
  }
  // An adapter is rebuilt on the model loaded before it, if that is the base it was trained on.
  let onBase: HostParams | undefined;
  if (loaded.file.adapter) {
    if (!base) return status(`${name} is an adapter: load its base model first, then the adapter`, "error"), false;
    try {
      onBase = checkBase(loaded, base.weights, base.name);
    } catch (e) {
      return status(named(name, e), "error"), false;
    }
  }
  const started = performance.now();
  const rebuilt = await timedRebuild(loaded, 0, onBase);
  const ms = performance.now() - started;
  const baseFile = onBase ? { name: base!.name, bytes: base!.bytes } : undefined;
  if (!onBase) base = { name, weights: rebuilt.params, bytes: bytes.length };
  current = { loaded, params: toDevice(loaded.model.specs, rebuilt.params) };
  showSizes(loaded, bytes.length, ms, baseFile);
  let unused = "";
  try {
    if (loaded.model.kind === "classifier") await showVision(current);
  } catch (e) {
    unused = ` (not used here: ${(e as Error).message})`;
  }
  if (loaded.model.kind === "language") $("language").classList.remove("hidden");
  status(`${name}: rebuilt in ${ms.toFixed(0)} ms${onBase ? `, an adapter on ${base!.name} (pick the base again to switch back)` : ""}${unused}`, "ready");
  return true;
}

async function showVision(c: Current): Promise<void> {
  clearPad();
  const { classes, input } = imageModel(c.loaded);
  $("vision").classList.remove("hidden");
  const names = classNames(c.loaded, classes);
  const response = await fetch("samples.json");
  const box = $("samples");
  box.innerHTML = "";
  if (!response.ok) {
    $("sample-score").textContent = "(no test images here: the Fashion-MNIST files stay in the repository)";
    return;
  }
  const { labels, images, side } = (await response.json()) as { labels: number[]; images: number[][]; side: number };
  if (input[0] !== side || input[1] !== side) {
    $("sample-score").textContent = `(the test images are ${side}x${side}; this model reads ${input[0]}x${input[1]})`;
    return;
  }
  const probs = await classify(c, Float32Array.from(images.flat()), images.length);
  let right = 0;
  images.forEach((img, i) => {
    const guess = probs[i]!.indexOf(Math.max(...probs[i]!));
    right += guess === labels[i] ? 1 : 0;
    const fig = document.createElement("figure");
    const cv = document.createElement("canvas");
    [cv.width, cv.height] = [side, side];
    const ctx = cv.getContext("2d")!;
    const data = ctx.createImageData(side, side);
    img.forEach((p, j) => data.data.set([p, p, p, 255], 4 * j));
    ctx.putImageData(data, 0, 0);
    const caption = document.createElement("figcaption");
    caption.className = guess === labels[i] ? "ok" : "bad";
    caption.textContent = names[guess] ?? String(guess);
    caption.title = `true: ${names[labels[i]!]}`;
    fig.append(cv, caption);
    box.append(fig);
  });
  const score = $("sample-score");
  score.textContent = `${right} of ${images.length} right (green), predicted in this page`;
  score.dataset.right = String(right);
  score.dataset.total = String(images.length);
}

// Drawing: white strokes on black, like the data; classified at the model's input size on each stroke's end.
const pad = () => $<HTMLCanvasElement>("pad");
function clearPad(): void {
  const ctx = pad().getContext("2d")!;
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, pad().width, pad().height);
  $("probs").innerHTML = "";
}

async function classifyDrawing(): Promise<void> {
  if (!current || current.loaded.model.kind !== "classifier") return;
  const [h, w] = imageModel(current.loaded).input;
  const small = document.createElement("canvas");
  [small.width, small.height] = [w, h];
  const ctx = small.getContext("2d")!;
  ctx.drawImage(pad(), 0, 0, w, h);
  const rgba = ctx.getImageData(0, 0, w, h).data;
  const pixels = Float32Array.from({ length: w * h }, (_, i) => rgba[4 * i]!);
  const [p] = await classify(current, pixels, 1);
  const names = classNames(current.loaded, p!.length);
  const top = [...p!.keys()].sort((a, b) => p![b]! - p![a]!).slice(0, 3);
  const table = $<HTMLTableElement>("probs");
  table.innerHTML = "";
  for (const k of top) {
    const tr = table.insertRow();
    tr.insertCell().textContent = names[k]!;
    const v = tr.insertCell();
    v.className = "n";
    v.textContent = `${(100 * p![k]!).toFixed(1)}%`;
    tr.insertCell().innerHTML = `<div class="bar" style="width:${Math.round(150 * p![k]!)}px"></div>`;
  }
  table.dataset.top = names[top[0]!];
}

function setUpDrawing(): void {
  let drawing = false;
  const at = (e: PointerEvent) => {
    const r = pad().getBoundingClientRect();
    return [((e.clientX - r.left) * pad().width) / r.width, ((e.clientY - r.top) * pad().height) / r.height] as const;
  };
  const ctx = pad().getContext("2d")!;
  pad().addEventListener("pointerdown", (e) => {
    drawing = true;
    const [x, y] = at(e);
    ctx.beginPath();
    ctx.moveTo(x, y);
  });
  pad().addEventListener("pointermove", (e) => {
    if (!drawing) return;
    const [x, y] = at(e);
    Object.assign(ctx, { strokeStyle: "#fff", lineWidth: 26, lineCap: "round", lineJoin: "round" });
    ctx.lineTo(x, y);
    ctx.stroke();
  });
  const end = () => {
    if (!drawing) return;
    drawing = false;
    void classifyDrawing();
  };
  pad().addEventListener("pointerup", end);
  pad().addEventListener("pointerleave", end);
  $("clear").addEventListener("click", clearPad);
}

async function generateText(): Promise<void> {
  if (!current || current.loaded.model.kind !== "language") return;
  const out = $("gen-out");
  out.textContent = "";
  document.body.dataset.state = "generating";
  const decoder = gptDecoder(current.loaded.file.model as Parameters<typeof gptDecoder>[0], tree.ref(current.params));
  const options = { tokens: Number($<HTMLInputElement>("tokens").value), temperature: Number($<HTMLInputElement>("temperature").value), topK: 0, seed: 0 };
  const prompt = new TextEncoder().encode($<HTMLInputElement>("prompt").value);
  const text = new TextDecoder();
  const started = performance.now();
  let n = 0;
  for await (const byte of generate(decoder, prompt, options)) {
    out.textContent += text.decode(Uint8Array.of(byte), { stream: true });
    n++;
  }
  const seconds = (performance.now() - started) / 1000;
  $("gen-stats").textContent = `${n} bytes in ${seconds.toFixed(1)} s (${(n / seconds).toFixed(0)} bytes/s), sampled with seed 0`;
  document.body.dataset.state = "generated";
}

/** Accuracy against file bytes from `mcnc compare`'s JSON lines, one series per method, seeds averaged. */
async function drawChart(): Promise<void> {
  const response = await fetch("compare.jsonl");
  if (!response.ok) return;
  const rows = (await response.text())
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { label: string; budget: string; accuracy: number; file_bytes: number });
  const points = new Map<string, Map<string, { bytes: number; acc: number[] }>>();
  for (const r of rows) {
    const series = points.get(r.label) ?? new Map();
    const p = series.get(r.budget) ?? { bytes: r.file_bytes, acc: [] };
    p.acc.push(r.accuracy);
    series.set(r.budget, p);
    points.set(r.label, series);
  }
  // The plot on the left, the legend in its own column on the right.
  const [W, H, L, B, R] = [800, 300, 48, 30, 190];
  const all = rows.map((r) => r.file_bytes);
  const [x0, x1] = [Math.log10(Math.min(...all)) - 0.1, Math.log10(Math.max(...all)) + 0.1];
  const accs = rows.map((r) => r.accuracy);
  const [y0, y1] = [Math.floor(Math.min(...accs) * 50) / 50, Math.ceil(Math.max(...accs) * 50) / 50];
  const X = (b: number) => L + ((Math.log10(b) - x0) / (x1 - x0)) * (W - L - R - 30);
  const Y = (a: number) => H - B - ((a - y0) / (y1 - y0)) * (H - B - 10);
  const colours = ["#3d6fd8", "#d8623d", "#2a9d5c", "#9b59b6", "#c49a1a", "#17a2b8", "#e83e8c", "#6c757d", "#343a40"];
  let svg = `<svg width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" style="max-width: 100%; height: auto" font-size="11">`;
  for (let e = Math.ceil(x0); e <= x1; e++) svg += `<line x1="${X(10 ** e)}" x2="${X(10 ** e)}" y1="10" y2="${H - B}" stroke="#eee"/><text x="${X(10 ** e)}" y="${H - B + 14}" text-anchor="middle">${number(10 ** e)} B</text>`;
  for (let a = y0; a <= y1 + 1e-9; a += 0.02) svg += `<line x1="${L}" x2="${W - R - 10}" y1="${Y(a)}" y2="${Y(a)}" stroke="#eee"/><text x="${L - 4}" y="${Y(a) + 4}" text-anchor="end">${a.toFixed(2)}</text>`;
  [...points].forEach(([label, series], i) => {
    const c = colours[i % colours.length];
    const pts = [...series.values()].map((p) => [X(p.bytes), Y(p.acc.reduce((s, v) => s + v, 0) / p.acc.length)] as const).sort((a, b) => a[0] - b[0]);
    svg += `<polyline fill="none" stroke="${c}" stroke-width="1.5" points="${pts.map((p) => p.join(",")).join(" ")}"/>`;
    for (const [x, y] of pts) svg += `<circle cx="${x}" cy="${y}" r="3" fill="${c}"/>`;
    svg += `<text x="${W - R}" y="${20 + 14 * i}" fill="${c}">${label}</text>`;
  });
  $("chart").innerHTML = `${svg}<text x="${(W - R) / 2}" y="${H - 2}" text-anchor="middle">file bytes (log scale); test accuracy, mean of seeds</text></svg>`;
  $("chart-section").classList.remove("hidden");
}

async function main(): Promise<void> {
  await initEngine();
  setUpDrawing();
  $("generate").addEventListener("click", () => void generateText());
  const list = (await (await fetch("models/index.json")).json()) as Array<{ name: string; bytes: number }>;
  const select = $<HTMLSelectElement>("models");
  for (const m of list) select.add(new Option(`${m.name} (${number(m.bytes)} bytes)`, m.name));
  const fetchModel = async (name: string) => load(new Uint8Array(await (await fetch(`models/${encodeURIComponent(name)}`)).arrayBuffer()), name);
  // Dropped files join the list, so that the list shows what is loaded and picking one again reloads it.
  const dropped = new Map<string, { name: string; bytes: Uint8Array }>();
  select.addEventListener("change", () => {
    const file = dropped.get(select.value);
    void (file ? load(file.bytes, file.name) : fetchModel(select.value));
  });
  const fromFile = async (file: File) => {
    const bytes = new Uint8Array(await file.arrayBuffer());
    if (!(await load(bytes, file.name))) return;
    const key = `dropped:${file.name}`;
    if (!dropped.has(key)) select.add(new Option(`${file.name} (dropped, ${number(bytes.length)} bytes)`, key));
    dropped.set(key, { name: file.name, bytes });
    select.value = key;
  };
  $<HTMLInputElement>("file").addEventListener("change", (e) => {
    const f = (e.target as HTMLInputElement).files?.[0];
    if (f) void fromFile(f);
  });
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => (e.preventDefault(), drop.classList.add("over")));
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const f = e.dataTransfer?.files[0];
    if (f) void fromFile(f);
  });
  void drawChart();
  if (list[0]) await fetchModel(list[0].name);
}

main().catch((e: unknown) => status(`error: ${(e as Error).message}`, "error"));
