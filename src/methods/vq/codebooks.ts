/**
 * Additive vector quantisation of a matrix [rows, cols] (AQLM's form): each group of `group` consecutive
 * input weights of an output column is the sum of one codeword from each of `codebooks` codebooks of
 * 2^codeBits entries. Learned as residual k-means, codebook after codebook, then refined in turn (each
 * codebook re-fitted with the others fixed), under the metric of the inputs' moment where one is given:
 * a group's error e counts e^T H_b e, H_b the diagonal block of X^T X over its rows (AQLM's objective
 * ||X W - X W'||^2 with the blocks between groups left out), or |e|^2 without data.
 */

export interface VqShape {
  codebooks: number;
  codeBits: number;
  group: number;
}

export interface VqLeaf {
  /** [codebooks, 2^codeBits, group]. */
  books: Float32Array;
  /** [codebooks, rows / group, cols], each below 2^codeBits. */
  codes: Uint8Array;
}

/** The weights [rows, cols] a leaf's codes and codebooks decode to. */
export function decodeVq(s: VqShape, leaf: VqLeaf, rows: number, cols: number): Float32Array {
  const [K, g, blocks] = [2 ** s.codeBits, s.group, rows / s.group];
  const out = new Float64Array(rows * cols);
  for (let m = 0; m < s.codebooks; m++)
    for (let b = 0; b < blocks; b++)
      for (let c = 0; c < cols; c++) {
        const e = leaf.codes[(m * blocks + b) * cols + c]!;
        for (let i = 0; i < g; i++) out[(b * g + i) * cols + c]! += leaf.books[(m * K + e) * g + i]!;
      }
  return Float32Array.from(out);
}

/** Solves A x = y for a small symmetric positive definite A [n, n] (Gaussian elimination with pivoting). */
function solve(A: Float64Array, y: Float64Array, n: number): Float64Array {
  const a = Float64Array.from(A);
  const x = Float64Array.from(y);
  for (let k = 0; k < n; k++) {
    let p = k;
    for (let i = k + 1; i < n; i++) if (Math.abs(a[i * n + k]!) > Math.abs(a[p * n + k]!)) p = i;
    if (p !== k) {
      for (let j = 0; j < n; j++) [a[k * n + j], a[p * n + j]] = [a[p * n + j]!, a[k * n + j]!];
      [x[k], x[p]] = [x[p]!, x[k]!];
    }
    const d = a[k * n + k]!;
    for (let i = k + 1; i < n; i++) {
      const f = a[i * n + k]! / d;
      if (f === 0) continue;
      for (let j = k; j < n; j++) a[i * n + j]! -= f * a[k * n + j]!;
      x[i]! -= f * x[k]!;
    }
  }
  for (let k = n - 1; k >= 0; k--) {
    let s = x[k]!;
    for (let j = k + 1; j < n; j++) s -= a[k * n + j]! * x[j]!;
    x[k] = s / a[k * n + k]!;
  }
  return x;
}

/**
 * The codes and codebooks of W [rows, cols] (rows a multiple of `group`), with `iterations` k-means steps
 * per fit and two refining sweeps; `hessian` [rows, rows] the inputs' moment, or none.
 */
export function encodeVq(s: VqShape, w: ArrayLike<number>, rows: number, cols: number, iterations: number, hessian?: Float64Array): VqLeaf {
  const [K, g, blocks, M] = [2 ** s.codeBits, s.group, rows / s.group, s.codebooks];
  const n = blocks * cols;
  // Each block's metric, damped by 1% of its mean diagonal so that unseen inputs still count a little.
  const metric = Array.from({ length: blocks }, (_, b) => {
    const h = new Float64Array(g * g);
    if (!hessian) for (let i = 0; i < g; i++) h[i * g + i] = 1;
    else for (let i = 0; i < g; i++) for (let j = 0; j < g; j++) h[i * g + j] = hessian[(b * g + i) * rows + b * g + j]!;
    let mean = 0;
    for (let i = 0; i < g; i++) mean += h[i * g + i]! / g;
    for (let i = 0; i < g; i++) h[i * g + i]! += 0.01 * mean + 1e-12;
    return h;
  });
  // Residual groups, group (b, c) at index b * cols + c: what the codebooks have yet to explain.
  const residual = new Float64Array(n * g);
  for (let b = 0; b < blocks; b++) for (let c = 0; c < cols; c++) for (let i = 0; i < g; i++) residual[(b * cols + c) * g + i] = w[(b * g + i) * cols + c]!;
  const books = new Float32Array(M * K * g);
  const codes = new Uint8Array(M * n);
  const addCodeword = (m: number, sign: number) => {
    for (let t = 0; t < n; t++) for (let i = 0; i < g; i++) residual[t * g + i]! -= sign * books[(m * K + codes[m * n + t]!) * g + i]!;
  };
  const fit = (m: number) => {
    const book = new Float64Array(K * g);
    // Start from K groups spread over the residuals.
    for (let e = 0; e < K; e++) book.set(residual.subarray(Math.floor((e * n) / K) * g, Math.floor((e * n) / K) * g + g), e * g);
    const assign = new Uint32Array(n);
    for (let it = 0; it < iterations; it++) {
      // Assignment: argmin over entries of c^T H c - 2 c^T H r, per block's metric.
      const Hc = new Float64Array(K * g);
      const cHc = new Float64Array(K);
      for (let b = 0; b < blocks; b++) {
        const h = metric[b]!;
        for (let e = 0; e < K; e++) {
          let q = 0;
          for (let i = 0; i < g; i++) {
            let v = 0;
            for (let j = 0; j < g; j++) v += h[i * g + j]! * book[e * g + j]!;
            Hc[e * g + i] = v;
            q += v * book[e * g + i]!;
          }
          cHc[e] = q;
        }
        for (let c = 0; c < cols; c++) {
          const t = b * cols + c;
          let [best, bestScore] = [0, Infinity];
          for (let e = 0; e < K; e++) {
            let dot = 0;
            for (let i = 0; i < g; i++) dot += Hc[e * g + i]! * residual[t * g + i]!;
            const score = cHc[e]! - 2 * dot;
            if (score < bestScore) [best, bestScore] = [e, score];
          }
          assign[t] = best;
        }
      }
      // Update: each entry the metric-weighted mean of its groups, (sum H)^-1 sum H r.
      const A = new Float64Array(K * g * g);
      const y = new Float64Array(K * g);
      for (let t = 0; t < n; t++) {
        const [e, h] = [assign[t]!, metric[Math.floor(t / cols)]!];
        for (let i = 0; i < g; i++) {
          let v = 0;
          for (let j = 0; j < g; j++) {
            A[e * g * g + i * g + j]! += h[i * g + j]!;
            v += h[i * g + j]! * residual[t * g + j]!;
          }
          y[e * g + i]! += v;
        }
      }
      for (let e = 0; e < K; e++) if (A[e * g * g]! > 0) book.set(solve(A.subarray(e * g * g, (e + 1) * g * g), y.subarray(e * g, (e + 1) * g), g), e * g);
    }
    books.set(Float32Array.from(book), m * K * g);
    codes.set(assign, m * n);
  };
  for (let m = 0; m < M; m++) {
    fit(m);
    addCodeword(m, 1);
  }
  for (let sweep = 0; sweep < 2 && M > 1; sweep++) {
    for (let m = 0; m < M; m++) {
      addCodeword(m, -1);
      fit(m);
      addCodeword(m, 1);
    }
  }
  return { books, codes };
}
