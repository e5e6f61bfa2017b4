// The search page: plain DOM, no build step, no outside resources. Every value from the index
// is written with textContent, never parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY_STORAGE = "lateint-api-key";

function authHeaders() {
  const key = sessionStorage.getItem(KEY_STORAGE) || $("api-key").value;
  return key ? { "X-API-Key": key } : {};
}

async function api(path) {
  const response = await fetch(path, { headers: authHeaders() });
  const body = await response.json().catch(() => ({}));
  if (response.status === 401) {
    $("key-row").hidden = false;
  }
  if (!response.ok) {
    const error = body.error || {};
    throw new Error(`${error.type || response.status}: ${error.message || response.statusText}`);
  }
  return body;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function setStatus(text, isError) {
  $("status").textContent = text;
  $("status").classList.toggle("error", Boolean(isError));
}

function filterJson() {
  const key = $("filter-key").value.trim();
  if (!key) return null;
  const op = $("filter-op").value;
  const raw = $("filter-value").value.trim();
  const scalar = (text) => {
    if (text === "true") return true;
    if (text === "false") return false;
    if (text === "null") return null;
    return text !== "" && !Number.isNaN(Number(text)) ? Number(text) : text;
  };
  let value;
  if (op === "exists") value = raw !== "false";
  else if (op === "in") value = raw.split(",").map((v) => scalar(v.trim())).filter((v) => v !== "");
  else value = scalar(raw);
  return JSON.stringify({ [key]: { [op]: value } });
}

async function loadInfo() {
  try {
    const info = await api("/info");
    const built = info.n_centroids ? `codec ${info.codec}, ${info.n_centroids} centroids` : "not built yet (exact search)";
    $("index-summary").textContent =
      `${info.documents} documents · ${info.tokens} tokens · model ${info.model} · ${built}` +
      (info.writable ? " · writable" : " · read-only");
  } catch (error) {
    $("index-summary").textContent = String(error.message);
  }
}

// The server wraps each match in U+0002 ... U+0003; each becomes a <mark>, built as text nodes.
function markedSnippet(marked) {
  const paragraph = element("p", "hit-snippet");
  for (const [index, part] of marked.split(/[\u0002\u0003]/).entries()) {
    if (!part) continue;
    paragraph.append(index % 2 === 1 ? element("mark", "", part) : document.createTextNode(part));
  }
  return paragraph;
}

function renderHit(hit) {
  const item = element("li", "hit");
  item.dataset.id = hit.id;
  const head = element("div", "hit-head");
  head.append(element("span", "hit-rank", `${hit.rank}.`), element("span", "hit-id", hit.id));
  head.append(element("span", "hit-score", Number(hit.score).toFixed(3)));
  item.append(head, markedSnippet(hit.marked_snippet || ""));
  const meta = element("div", "hit-meta");
  for (const [key, value] of Object.entries(hit.meta || {})) {
    meta.append(element("span", "chip", `${key}: ${typeof value === "string" ? value : JSON.stringify(value)}`));
  }
  item.append(meta);
  item.addEventListener("click", () => openDocument(hit.id, item));
  return item;
}

async function search(event) {
  if (event) event.preventDefault();
  const query = $("query").value.trim();
  if (!query) return;
  const params = new URLSearchParams({ q: query, k: $("k").value || "10", mode: $("mode").value });
  params.set("fields", "rank,id,score,meta,marked_snippet");
  if ($("exact").checked) params.set("exact", "true");
  const where = filterJson();
  if (where) params.set("where", where);
  history.replaceState(null, "", `?${params}`);
  setStatus("searching…");
  const started = performance.now();
  try {
    const body = await api(`/search?${params}`);
    const list = $("results");
    list.replaceChildren(...body.hits.map(renderHit));
    const ms = Math.round(performance.now() - started);
    setStatus(`${body.hits.length} result${body.hits.length === 1 ? "" : "s"} in ${ms} ms`);
  } catch (error) {
    $("results").replaceChildren();
    setStatus(error.message, true);
  }
}

async function openDocument(id, item) {
  for (const node of document.querySelectorAll("#results li.selected")) node.classList.remove("selected");
  if (item) item.classList.add("selected");
  try {
    const doc = await api(`/documents/${encodeURIComponent(id)}`);
    $("document-id").textContent = doc.id;
    const meta = $("document-meta");
    meta.replaceChildren();
    for (const [key, value] of Object.entries({ tokens: doc.n_tokens, ...doc.meta })) {
      meta.append(element("dt", "", key), element("dd", "", typeof value === "string" ? value : JSON.stringify(value)));
    }
    $("document-text").textContent = doc.text;
    $("document").hidden = false;
    document.querySelector(".columns").classList.add("with-document");
  } catch (error) {
    setStatus(error.message, true);
  }
}

function closeDocument() {
  $("document").hidden = true;
  document.querySelector(".columns").classList.remove("with-document");
}

function restoreFromUrl() {
  const params = new URLSearchParams(location.search);
  if (!params.get("q")) return;
  $("query").value = params.get("q");
  if (params.get("k")) $("k").value = params.get("k");
  if (params.get("mode")) $("mode").value = params.get("mode");
  $("exact").checked = params.get("exact") === "true";
  search();
}

$("search-form").addEventListener("submit", search);
$("document-close").addEventListener("click", closeDocument);
$("filter-clear").addEventListener("click", () => {
  $("filter-key").value = "";
  $("filter-value").value = "";
  search();
});
$("api-key").addEventListener("change", () => {
  sessionStorage.setItem(KEY_STORAGE, $("api-key").value);
  loadInfo();
});
loadInfo();
restoreFromUrl();
