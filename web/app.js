// Loads model/edge_features.json and a LiteRT model from model/ (published by the pipeline
// in the pushed version's assets.extra/litert/), builds a form from the features, scores it.
// ?variant=float|int8 picks the model; ?cases=FILE scores those records and POSTs the
// answers to /results (the test's loopback server), so a test can compare them.
import {loadLiteRt, loadAndCompile, Tensor} from "@litertjs/core";
import {EdgeFeatures} from "./edge_features.js";

const params = new URLSearchParams(location.search);
const status = document.getElementById("status");

async function main() {
  const spec = await (await fetch("model/edge_features.json")).json();
  const report = await (await fetch("model/edge_report.json")).json();
  const variant = params.get("variant") || (report.published.includes("int8") ? "int8" : "float");
  await loadLiteRt("./wasm/");
  const model = await loadAndCompile(`model/model_${variant}.tflite`, {accelerator: "wasm"});
  const features = new EdgeFeatures(spec);

  async function score(record) {
    const row = features.transform(record);
    const inputs = {};
    for (const [key, dtype] of Object.entries(spec.inputs)) {
      const data = dtype === "float32" ? new Float32Array([row[key]]) : new Int32Array([row[key]]);
      inputs[key] = new Tensor(data, [1, 1]);
    }
    const outputs = await model.run(inputs);
    const out = outputs[spec.output];
    const values = Array.from((await out.moveTo("wasm")).toTypedArray());
    for (const t of Object.values(inputs)) t.delete();
    for (const t of Object.values(outputs)) t.delete();
    return values;
  }

  const cases = params.get("cases");
  if (cases) {
    const records = await (await fetch(cases)).json();
    const answers = [];
    for (const r of records) answers.push({inputs: features.transform(r), outputs: await score(r)});
    await fetch("/results", {method: "POST", body: JSON.stringify({variant, answers})});
  }

  const form = document.getElementById("record");
  for (const f of spec.features) {
    const label = document.createElement("label");
    label.textContent = f.name;
    const input = document.createElement("input");
    input.name = f.name;
    if (f.vocabulary) {
      input.setAttribute("list", `list-${f.key}`);
      const list = document.createElement("datalist");
      list.id = `list-${f.key}`;
      for (const t of f.vocabulary.slice(0, 200)) list.append(new Option(t));
      label.append(list);
    }
    label.append(input);
    form.append(label);
  }
  const button = document.getElementById("run");
  button.disabled = false;
  button.onclick = async () => {
    const record = {};
    for (const f of spec.features) {
      const v = form.elements[f.name].value.trim();
      record[f.name] = v === "" ? null : (f.dtype === "string" ? v : Number(v));
    }
    const out = await score(record);
    const text = spec.task === "regression" ? `prediction: ${out[0].toFixed(4)}`
      : spec.task === "binary" ? `P(${spec.classes[1] ?? "1"}) = ${out[0].toFixed(4)}`
      : out.map((p, i) => `${spec.classes[i]}: ${p.toFixed(4)}`).join(", ");
    document.getElementById("score").textContent = text;
  };
  status.textContent = `model: ${variant} (${spec.task}), ${spec.features.length} features`;
}

main().catch(async (e) => {
  status.textContent = `error: ${e}`;
  if (params.get("cases")) await fetch("/results", {method: "POST", body: JSON.stringify({error: String(e)})});
});
