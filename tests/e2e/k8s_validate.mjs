// Validates Kubernetes and Prometheus Operator objects against their OpenAPI schemas with the
// npm packages kubernetes-models and @kubernetes-models/prometheus-operator (installed in
// tests/e2e/node by its lock file).
//
// stdin: JSON [{"name": "file#index", "doc": {...}}, ...]
// stdout: JSON [{"name", "model", "errors": [string], "unknown": [json pointer]}, ...]
//
// The schemas accept fields they do not declare, so a misspelt field (`imagePullPolcy`) would
// pass. The compiled validators read every declared property by name and enumerate the keys of
// free-form maps (labels, ConfigMap data), so each object is wrapped in a Proxy that records
// which keys the validator read: an own key it never read is a field the schema does not know.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const MODULES = path.join(path.dirname(fileURLToPath(import.meta.url)), "node", "node_modules");

// apiVersion -> [package, folder]
function modulePath(apiVersion, kind) {
  if (apiVersion === "monitoring.coreos.com/v1") {
    return path.join(MODULES, "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1",
                     kind + ".js");
  }
  if (/^[a-z0-9.]*\/?v[0-9a-z]+$/.test(apiVersion)) {
    return path.join(MODULES, "kubernetes-models", apiVersion, kind + ".js");
  }
  return null;
}

function track(value, pointer, records) {
  if (value === null || typeof value !== "object") return value;
  const rec = { pointer, value, read: new Set(), all: false, isArray: Array.isArray(value) };
  records.push(rec);
  const children = new Map();
  return new Proxy(value, {
    get(target, key, receiver) {
      if (typeof key !== "string") return Reflect.get(target, key, receiver);
      rec.read.add(key);
      if (!Object.prototype.hasOwnProperty.call(target, key)) {
        return Reflect.get(target, key, receiver);
      }
      if (!children.has(key)) {
        children.set(key, track(target[key], pointer + "/" + key, records));
      }
      return children.get(key);
    },
    has(target, key) {
      if (typeof key === "string") rec.read.add(key);
      return Reflect.has(target, key);
    },
    ownKeys(target) {
      rec.all = true;  // a map the schema enumerates: every key is accounted for
      return Reflect.ownKeys(target);
    },
  });
}

async function validateOne({ name, doc }) {
  const out = { name, model: null, errors: [], unknown: [] };
  if (!doc || typeof doc.apiVersion !== "string" || typeof doc.kind !== "string") {
    out.errors.push("no apiVersion/kind");
    return out;
  }
  const file = modulePath(doc.apiVersion, doc.kind);
  if (!file || !fs.existsSync(file)) {
    out.errors.push(`no schema for ${doc.apiVersion} ${doc.kind}`);
    return out;
  }
  const mod = await import(pathToFileURL(file).href);
  const Model = mod[doc.kind];
  out.model = path.relative(MODULES, file);
  // The model's own validate(), as an application would call it: new Model(doc).validate().
  try {
    new Model(doc).validate();
  } catch (e) {
    out.errors.push(String(e.message || e));
  }
  // The same validator run on a tracked copy, for the fields it never looked at.
  const records = [];
  const tracked = track(JSON.parse(JSON.stringify(doc)), "", records);
  try {
    Model.prototype.validate.call(tracked);
  } catch (e) {
    // reported above
  }
  for (const rec of records) {
    if (rec.isArray || rec.all) continue;
    for (const key of Object.keys(rec.value)) {
      if (!rec.read.has(key)) out.unknown.push(rec.pointer + "/" + key);
    }
  }
  return out;
}

const input = JSON.parse(fs.readFileSync(0, "utf8"));
const results = [];
for (const item of input) results.push(await validateOne(item));
process.stdout.write(JSON.stringify(results, null, 1) + "\n");
