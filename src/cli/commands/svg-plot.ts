/** A small, dependency-free SVG line plot: quality (accuracy, bits per byte) against file bytes (log scale), one line per method. */
export interface Series {
  name: string;
  points: Array<{ x: number; y: number; lo: number; hi: number }>;
}

const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
/** Past ten series the colours come round again, each time with another dash: no two series look alike. */
const DASHES = ["", "7 4", "2 3", "9 3 2 3"];
/** Pixels per character of the legend's 12 px sans-serif text, generously: names are never cut. */
const CHAR = 7.5;

/** The colour and dash of series `i` (a plot of up to 40 distinct styles). */
export function seriesStyle(i: number): { colour: string; dash: string } {
  return { colour: COLOURS[i % COLOURS.length]!, dash: DASHES[Math.floor(i / COLOURS.length) % DASHES.length]! };
}
const escape = (s: string) => s.replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`);

export function qualityPlot(series: Series[], title: string, yLabel: string): string {
  // The legend's column fits the longest name, and the plot is tall enough for every legend row.
  const R = Math.max(150, 50 + Math.ceil(CHAR * Math.max(...series.map((s) => s.name.length))));
  const [W, H, L, T, B] = [570 + R, Math.max(440, 90 + 18 * series.length), 70, 40, 50];
  const pts = series.flatMap((s) => s.points);
  const xs = pts.map((p) => Math.log10(p.x));
  const [x0, x1] = [Math.floor(Math.min(...xs)), Math.ceil(Math.max(...xs))];
  // Ticks at a round step that gives at most ten of them.
  const [lo, hi] = [Math.min(...pts.map((p) => p.lo)), Math.max(...pts.map((p) => p.hi))];
  const tick = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1].find((t) => (hi - lo) / t <= 10) ?? 1;
  const [y0, y1] = [Math.floor(lo / tick) * tick, Math.ceil(hi / tick) * tick];
  const px = (x: number) => L + ((Math.log10(x) - x0) / Math.max(x1 - x0, 1e-9)) * (W - L - R);
  const py = (y: number) => H - B - ((y - y0) / Math.max(y1 - y0, 1e-9)) * (H - T - B);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="14">${escape(title)}</text>`,
    `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="black"/>`,
    `<line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="black"/>`,
    `<text x="${(L + W - R) / 2}" y="${H - 12}" text-anchor="middle">file bytes (log scale)</text>`,
    `<text x="18" y="${(T + H - B) / 2}" text-anchor="middle" transform="rotate(-90 18 ${(T + H - B) / 2})">${escape(yLabel)}</text>`,
  ];
  for (let e = x0; e <= x1; e++) out.push(`<text x="${px(10 ** e)}" y="${H - B + 16}" text-anchor="middle">1e${e}</text>`);
  for (let y = y0; y <= y1 + 1e-9; y += tick) out.push(`<text x="${L - 6}" y="${py(y) + 4}" text-anchor="end">${y.toFixed(2)}</text>`, `<line x1="${L}" y1="${py(y)}" x2="${W - R}" y2="${py(y)}" stroke="#eee"/>`);
  series.forEach((s, i) => {
    const { colour: c, dash } = seriesStyle(i);
    const dashed = dash ? ` stroke-dasharray="${dash}"` : "";
    const sorted = [...s.points].sort((a, b) => a.x - b.x);
    out.push(`<polyline fill="none" stroke="${c}" stroke-width="2"${dashed} points="${sorted.map((p) => `${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join(" ")}"/>`);
    for (const p of sorted) {
      out.push(`<line x1="${px(p.x)}" y1="${py(p.lo)}" x2="${px(p.x)}" y2="${py(p.hi)}" stroke="${c}"/>`, `<circle cx="${px(p.x)}" cy="${py(p.y)}" r="3.5" fill="${c}"/>`);
    }
    out.push(`<line x1="${W - R + 10}" y1="${T + 18 * i + 6}" x2="${W - R + 34}" y2="${T + 18 * i + 6}" stroke="${c}" stroke-width="2"${dashed}/>`, `<text x="${W - R + 40}" y="${T + 18 * i + 10}">${escape(s.name)}</text>`);
  });
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
