/** The page's plot of `mcnc compare`'s results. */
import { $, number } from "./dom.js";

/** Accuracy against file bytes from `mcnc compare`'s JSON lines, one series per method, seeds averaged. */
export async function drawChart(): Promise<void> {
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
