// The edge model's preprocessing in the browser: modeling/edge_features.py, line for line.
// edge_features.json holds the numbers tf.Transform's analysers found; tests hold this
// module equal to the Transform graph on the eval split (tests/test_edge.py).

const f32 = Math.fround; // float32 rounding after each step, as TensorFlow's float32 ops

export function missingKey(key) {
  return (key.endsWith("_xf") ? key.slice(0, -3) : key) + "_missing_xf";
}

function presentNumber(x) {
  if (x === null || x === undefined || x === "") return null;
  const v = f32(Number(x));
  return Number.isFinite(v) ? v : null;
}

function bisectRight(sorted, v) {
  let lo = 0, hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (v < sorted[mid]) hi = mid; else lo = mid + 1;
  }
  return lo;
}

export class EdgeFeatures {
  constructor(spec) {
    this.spec = spec;
    this.index = {};
    for (const f of spec.features) {
      if (f.vocabulary) this.index[f.key] = new Map(f.vocabulary.map((t, i) => [t, i]));
    }
  }

  // {input name: number} for one raw record ({feature name: value, or null when absent}).
  transform(record) {
    const out = {};
    for (const f of this.spec.features) {
      const x = record[f.name];
      let present;
      if (f.role === "numeric" || f.role === "bucketized") {
        const v = presentNumber(x);
        present = v !== null;
        if (f.role === "numeric") {
          out[f.key] = present && f.std ? f32(f32(v - f.mean) / f.std) : 0.0;
        } else {
          out[f.key] = present ? bisectRight(f.boundaries, v) : f.absent_bucket;
        }
      } else {
        present = x !== null && x !== undefined && x !== "";
        let token = present ? x : f["default"];
        if (f.role === "integer_categorical") token = String(Math.trunc(Number(token)));
        const index = this.index[f.key];
        out[f.key] = index.has(token) ? index.get(token) : index.size;
      }
      if (f.optional) out[missingKey(f.key)] = present ? 0.0 : 1.0;
    }
    return out;
  }
}
