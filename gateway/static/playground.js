// genai-gateway playground: plain JavaScript, no dependencies, no build step.
// Model output is never inserted as HTML: Markdown is rendered from HTML-escaped text (md()),
// reasoning and tool calls are set as text. The page's Content-Security-Policy backs this up.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY = "genai-gateway.api-key";

// ---- API access: the key from session storage, asked for on 401 ---------------------------------

let keyRequest = null;

function askKey() {
  if (!keyRequest) {
    keyRequest = new Promise((resolve) => {
      const dialog = $("key-dialog");
      $("key-form").onsubmit = () => {
        sessionStorage.setItem(KEY, $("key-input").value.trim());
        keyRequest = null;
        resolve();
      };
      dialog.showModal();
      $("key-input").focus();
    });
  }
  return keyRequest;
}

async function api(path, init = {}) {
  for (;;) {
    const headers = new Headers(init.headers || {});
    const key = sessionStorage.getItem(KEY);
    if (key) headers.set("Authorization", "Bearer " + key);
    if (init.body && !headers.has("Content-Type")) headers.set("Content-Type", "application/json");
    const response = await fetch(path, { ...init, headers });
    if (response.status !== 401) return response;
    await askKey();
  }
}

async function errorText(response) {
  try {
    const body = await response.json();
    return (body.error && (body.error.message || body.error)) || JSON.stringify(body);
  } catch {
    return response.status + " " + response.statusText;
  }
}

function status(text) {
  $("status").textContent = text;
}

// ---- Markdown: escape first, then a small subset (fenced code, inline code, bold, italic, headings,
// lists, http(s) links) -------------------------------------------------------------------------

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const esc = (text) => text.replace(/[&<>"']/g, (c) => ESCAPES[c]);

function inline(escaped) {
  return escaped.split(/(`[^`\n]+`)/).map((part, i) => {
    if (i % 2) return "<code>" + part.slice(1, -1) + "</code>";
    return part
      .replace(/\*\*([^*\n]+)\*\*/g, "<strong>$1</strong>")
      .replace(/(^|[^*\w])\*([^*\n]+)\*/g, "$1<em>$2</em>")
      .replace(/\[([^\]\n]+)\]\((https?:\/\/[^\s()]+)\)/g, '<a href="$2" target="_blank" rel="noopener noreferrer">$1</a>');
  }).join("");
}

function blocks(text) {
  const out = [];
  let list = null;
  let paragraph = [];
  const flush = () => {
    if (paragraph.length) out.push("<p>" + paragraph.join("<br>") + "</p>");
    paragraph = [];
    if (list) out.push("</" + list + ">");
    list = null;
  };
  for (const line of esc(text).split("\n")) {
    const heading = /^(#{1,4})\s+(.*)$/.exec(line);
    const item = /^\s*([-*]|\d+\.)\s+(.*)$/.exec(line);
    if (heading) {
      flush();
      const level = heading[1].length + 2;
      out.push("<h" + level + ">" + inline(heading[2]) + "</h" + level + ">");
    } else if (item) {
      const kind = /\d/.test(item[1]) ? "ol" : "ul";
      if (list !== kind) { flush(); out.push("<" + kind + ">"); list = kind; }
      out.push("<li>" + inline(item[2]) + "</li>");
    } else if (!line.trim()) {
      flush();
    } else {
      if (list) flush();
      paragraph.push(inline(line));
    }
  }
  flush();
  return out.join("");
}

function md(text) {
  return text.split("```").map((part, i) => {
    if (!(i % 2)) return blocks(part);
    const newline = part.indexOf("\n");
    const code = newline >= 0 ? part.slice(newline + 1) : part;
    return "<pre><code>" + esc(code.replace(/\n$/, "")) + "</code></pre>";
  }).join("");
}

// ---- Server-sent events over fetch ------------------------------------------------------------

async function* sseData(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart());
      if (data.length) yield data.join("\n");
    }
  }
}

// ---- Models ---------------------------------------------------------------------------------------

let models = [];

async function loadModels() {
  const response = await api("v3/models");
  if (!response.ok) { status("models: " + await errorText(response)); return; }
  models = (await response.json()).data;
  const fill = (select, test) => {
    const previous = select.value;
    select.replaceChildren(...models.filter(test).map((m) => new Option(m.id, m.id)));
    if (previous && [...select.options].some((o) => o.value === previous)) select.value = previous;
  };
  const serves = (endpoint) => (m) => (m.endpoints || []).includes(endpoint);
  fill($("chat-model"), serves("chat/completions"));
  fill($("img-model"), serves("images/generations"));
  fill($("emb-model"), (m) => serves("rerank")(m) || serves("embeddings")(m));
  status(models.length + " models");
}

// ---- Chat -----------------------------------------------------------------------------------------

let conversation = JSON.parse(sessionStorage.getItem("genai-gateway.chat") || "[]");
let controller = null;

function saveHistory() {
  sessionStorage.setItem("genai-gateway.chat", JSON.stringify(conversation));
}

function bubble(role) {
  const node = document.createElement("div");
  node.className = "msg " + role;
  node.innerHTML = '<div class="meta"></div><details class="reasoning" hidden><summary>Reasoning</summary>' +
    '<div class="reasoning-text"></div></details><div class="tools" hidden></div><div class="body"></div>';
  $("chat-log").append(node);
  return {
    node,
    meta: node.querySelector(".meta"),
    reasoning: node.querySelector(".reasoning"),
    reasoningText: node.querySelector(".reasoning-text"),
    tools: node.querySelector(".tools"),
    body: node.querySelector(".body"),
  };
}

function showMessage(message) {
  const view = bubble(message.role);
  view.meta.textContent = message.role;
  view.body.innerHTML = md(message.content || "");
  $("chat-log").scrollTop = $("chat-log").scrollHeight;
  return view;
}

function numberOrNull(id) {
  const value = $(id).value.trim();
  return value === "" ? null : Number(value);
}

function chatRequest() {
  const messages = [];
  const system = $("chat-system").value.trim();
  if (system) messages.push({ role: "system", content: system });
  const body = { model: $("chat-model").value, messages: messages.concat(conversation), stream: true,
    stream_options: { include_usage: true } };
  const temperature = numberOrNull("chat-temperature");
  const maxTokens = numberOrNull("chat-max-tokens");
  const seed = numberOrNull("chat-seed");
  if (temperature !== null) body.temperature = temperature;
  if (maxTokens !== null) body.max_tokens = maxTokens;
  if (seed !== null) body.seed = seed;
  const extra = $("chat-extra").value.trim();
  return extra ? { ...body, ...JSON.parse(extra) } : body;
}

function renderTools(view, calls) {
  view.tools.hidden = false;
  view.tools.replaceChildren(...calls.filter(Boolean).map((call) => {
    const line = document.createElement("pre");
    line.textContent = "tool call: " + call.name + "(" + call.arguments + ")";
    return line;
  }));
}

async function send(text) {
  conversation.push({ role: "user", content: text });
  saveHistory();
  showMessage({ role: "user", content: text });
  const view = bubble("assistant");
  view.node.classList.add("streaming");
  let body;
  try {
    body = chatRequest();
  } catch (error) {
    view.body.textContent = "Extra request fields are not valid JSON: " + error.message;
    return;
  }
  controller = new AbortController();
  $("chat-stop").disabled = false;
  $("chat-send").disabled = true;
  let content = "";
  let reasoning = "";
  const calls = [];
  let started = 0;
  let pieces = 0;
  let usage = null;
  let ending = "";
  view.meta.textContent = body.model;
  try {
    const response = await api("v3/chat/completions", { method: "POST", body: JSON.stringify(body),
      signal: controller.signal });
    if (!response.ok) throw new Error(await errorText(response));
    for await (const data of sseData(response)) {
      if (data === "[DONE]") break;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(chunk.error.message);
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices && chunk.choices[0];
      if (!choice) continue;
      view.meta.textContent = chunk.model;
      const delta = choice.delta || {};
      if (!started && (delta.content || delta.reasoning_content || delta.tool_calls)) started = performance.now();
      if (delta.reasoning_content) {
        reasoning += delta.reasoning_content;
        view.reasoning.hidden = false;
        view.reasoningText.textContent = reasoning;
      }
      if (delta.content) {
        content += delta.content;
        pieces += 1;
        view.body.innerHTML = md(content);
      }
      for (const call of delta.tool_calls || []) {
        const slot = calls[call.index] || (calls[call.index] = { name: "", arguments: "" });
        if (call.function && call.function.name) slot.name = call.function.name;
        if (call.function && call.function.arguments) slot.arguments += call.function.arguments;
        renderTools(view, calls);
      }
      if (choice.finish_reason) ending = choice.finish_reason;
      $("chat-log").scrollTop = $("chat-log").scrollHeight;
    }
  } catch (error) {
    if (error.name === "AbortError") {
      ending = "stopped";
    } else {
      ending = "error";
      view.body.insertAdjacentText("beforeend", (content ? "\n" : "") + "Error: " + error.message);
    }
  } finally {
    controller = null;
    $("chat-stop").disabled = true;
    $("chat-send").disabled = false;
    view.node.classList.remove("streaming");
  }
  const seconds = started ? (performance.now() - started) / 1000 : 0;
  const tokens = usage ? usage.completion_tokens : pieces;
  const rate = seconds > 0 ? " · " + (tokens / seconds).toFixed(1) + " tokens/s" : "";
  view.meta.textContent += " · " + (ending || "done") + " · " + tokens + " tokens" + rate;
  view.node.dataset.finish = ending || "done";
  if (content || calls.length) {
    conversation.push({ role: "assistant", content });
    saveHistory();
  }
}

function setUpChat() {
  for (const message of conversation) showMessage(message);
  $("chat-form").onsubmit = (event) => {
    event.preventDefault();
    const text = $("chat-input").value.trim();
    if (!text || controller) return;
    $("chat-input").value = "";
    send(text);
  };
  $("chat-input").onkeydown = (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      $("chat-form").requestSubmit();
    }
  };
  $("chat-stop").onclick = () => controller && controller.abort();
  $("chat-clear").onclick = () => {
    conversation = [];
    saveHistory();
    $("chat-log").replaceChildren();
  };
}

// ---- Images ---------------------------------------------------------------------------------------

function setUpImages() {
  $("img-form").onsubmit = async (event) => {
    event.preventDefault();
    const body = { model: $("img-model").value, prompt: $("img-prompt").value };
    const size = $("img-size").value;
    const steps = numberOrNull("img-steps");
    const seed = numberOrNull("img-seed");
    if (size) body.size = size;
    if (steps !== null) body.num_inference_steps = steps;
    if (seed !== null) body.seed = seed;
    $("img-go").disabled = true;
    $("img-note").textContent = "Generating…";
    const started = performance.now();
    try {
      const response = await api("v3/images/generations", { method: "POST", body: JSON.stringify(body) });
      if (!response.ok) throw new Error(await errorText(response));
      const result = await response.json();
      for (const item of result.data) {
        const figure = document.createElement("figure");
        const image = new Image();
        image.src = "data:image/png;base64," + item.b64_json;
        image.alt = body.prompt;
        const caption = document.createElement("figcaption");
        caption.textContent = body.prompt;
        figure.append(image, caption);
        $("gallery").prepend(figure);
      }
      $("img-note").textContent = "Done in " + ((performance.now() - started) / 1000).toFixed(1) + " s";
    } catch (error) {
      $("img-note").textContent = "Error: " + error.message;
    } finally {
      $("img-go").disabled = false;
    }
  };
}

// ---- Embeddings and rerank ------------------------------------------------------------------------

function cosine(a, b) {
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
  return dot / Math.sqrt(na * nb);
}

async function scores(model, mode, query, documents) {
  if (mode === "rerank") {
    const response = await api("v3/rerank", { method: "POST", body: JSON.stringify({ model, query, documents }) });
    if (!response.ok) throw new Error(await errorText(response));
    const out = new Array(documents.length).fill(0);
    for (const result of (await response.json()).results) out[result.index] = result.relevance_score;
    return out;
  }
  const response = await api("v3/embeddings", { method: "POST",
    body: JSON.stringify({ model, input: [query, ...documents] }) });
  if (!response.ok) throw new Error(await errorText(response));
  const vectors = (await response.json()).data.sort((a, b) => a.index - b.index).map((d) => d.embedding);
  return vectors.slice(1).map((v) => cosine(vectors[0], v));
}

function setUpEmbeddings() {
  $("emb-form").onsubmit = async (event) => {
    event.preventDefault();
    const documents = $("emb-docs").value.split("\n").map((d) => d.trim()).filter(Boolean);
    $("emb-note").textContent = "";
    try {
      const values = await scores($("emb-model").value, $("emb-mode").value, $("emb-query").value, documents);
      const rows = documents.map((text, i) => ({ text, score: values[i] })).sort((a, b) => b.score - a.score);
      $("emb-results").replaceChildren(...rows.map((row) => {
        const line = document.createElement("div");
        line.className = "score";
        const bar = document.createElement("div");
        bar.className = "bar";
        bar.style.width = Math.max(0, Math.min(1, row.score)) * 100 + "%";
        const label = document.createElement("span");
        label.textContent = row.score.toFixed(3) + "  " + row.text;
        line.append(bar, label);
        return line;
      }));
    } catch (error) {
      $("emb-note").textContent = "Error: " + error.message;
    }
  };
}

// ---- Server glance: /v1/config, /v3/models and /metrics every 2 s while the tab is shown --------------

let lastTokens = null;

function parseMetrics(text) {
  const samples = [];
  for (const line of text.split("\n")) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels = {};
    for (const pair of (match[2] || "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]] = pair[2];
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

async function refreshServer() {
  const [configResponse, metricsResponse] = await Promise.all([api("v1/config"), api("metrics")]);
  const config = configResponse.ok ? await configResponse.json() : {};
  const samples = metricsResponse.ok ? parseMetrics(await metricsResponse.text()) : null;
  const now = performance.now();
  const value = (name, model) => {
    if (!samples) return null;
    const found = samples.filter((s) => s.name === name && s.labels.name === model);
    return found.length ? found.reduce((sum, s) => sum + s.value, 0) : null;
  };
  const tokens = {};
  const rows = Object.keys(config).map((name) => {
    const versions = config[name].model_version_status || [];
    const kind = (models.find((m) => m.id === name) || {}).kind || "";
    tokens[name] = value("genai_generation_tokens_total", name) ?? value("genai_generation_tokens", name);
    let rate = "";
    if (lastTokens && tokens[name] !== null && lastTokens.values[name] != null) {
      rate = ((tokens[name] - lastTokens.values[name]) / ((now - lastTokens.at) / 1000)).toFixed(1);
    }
    const kv = value("genai_kv_cache_usage_percent", name);
    const cells = [name, kind, versions.map((v) => v.state).join(", "), value("genai_requests_running", name),
      value("genai_requests_waiting", name), kv === null ? null : kv.toFixed(1) + " %", rate];
    const row = document.createElement("tr");
    row.dataset.model = name;
    row.replaceChildren(...cells.map((cell) => {
      const td = document.createElement("td");
      td.textContent = cell === null || cell === undefined ? "–" : String(cell);
      return td;
    }));
    return row;
  });
  lastTokens = { at: now, values: tokens };
  document.querySelector("#server-table tbody").replaceChildren(...rows);
  $("server-note").textContent = samples ? "Refreshed " + new Date().toLocaleTimeString()
    : "Metrics are off: start the server with --metrics_enable to see load and tokens/s.";
}

// ---- Tabs and start-up ------------------------------------------------------------------------------

let serverTimer = null;

function showTab(name) {
  for (const button of document.querySelectorAll("#tabs button")) {
    button.classList.toggle("active", button.dataset.tab === name);
  }
  for (const section of document.querySelectorAll(".tab")) section.hidden = section.id !== "tab-" + name;
  clearInterval(serverTimer);
  if (name === "server") {
    refreshServer();
    serverTimer = setInterval(refreshServer, 2000);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("#tabs button")) button.onclick = () => showTab(button.dataset.tab);
  setUpChat();
  setUpImages();
  setUpEmbeddings();
  loadModels();
});
