// Likeness demo page: make an ID photo through the public HTTP API (v1).
// Plain ES module, no framework, no build step. Nothing is sent before the age box is ticked.

const TOKEN_KEY = "likeness.token";
const POLL_MS = 500;

const COLOR_NAMES = {
  "#ffffff": "White",
  "#f5f5f5": "Off-white",
  "#fffdd0": "Cream",
  "#d3d3d3": "Light grey",
  "#808080": "Grey",
  "#add8e6": "Light blue",
  "#0000ff": "Blue",
  "#ff0000": "Red",
};

const STATUS_TITLES = {
  0: "Can't reach the server",
  400: "Please check your choices",
  401: "Your session has ended",
  402: "Limit reached",
  403: "Not allowed",
  404: "Not found",
  409: "That can't be done right now",
  413: "That photo is too large",
  415: "That file type isn't supported",
  422: "Please check your photo",
  429: "Too many requests",
  499: "Cancelled",
};

// ---------------------------------------------------------------------------
// Small helpers

const $ = (id) => document.getElementById(id);

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value == null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "style") Object.assign(el.style, value);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

function num(value) {
  const n = typeof value === "string" ? Number(value) : value;
  return typeof n === "number" && Number.isFinite(n) ? n : null;
}

function fmt(value, digits = 1) {
  const n = num(value);
  if (n === null) return "–";
  return String(Number(n.toFixed(digits)));
}

function fmtRange(range, unit = "") {
  if (!range) return null;
  const suffix = unit ? ` ${unit}` : "";
  if (range.min !== null && range.max !== null) {
    return range.min === range.max ? `${fmt(range.min)}${suffix}` : `${fmt(range.min)}–${fmt(range.max)}${suffix}`;
  }
  if (range.min !== null) return `≥ ${fmt(range.min)}${suffix}`;
  if (range.max !== null) return `≤ ${fmt(range.max)}${suffix}`;
  return null;
}

function fmtBytes(bytes) {
  const n = num(bytes);
  if (n === null) return "–";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${fmt(n / 1024, 0)} KB`;
  return `${fmt(n / (1024 * 1024), 1)} MB`;
}

function fmtTime(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  const sameDay = date.toDateString() === new Date().toDateString();
  return sameDay
    ? date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : date.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}

function colorName(hex) {
  return COLOR_NAMES[hex.toLowerCase()] || hex.toLowerCase();
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------
// Spec normalisation: accepts the proto-shaped JSON ({head_mm: {min, max}, backgrounds: [...]})
// as well as the flat catalog shape (head_min_mm, head_max_mm, background "a|b").

function pickRange(spec, name) {
  const nested = spec[`${name}_mm`];
  let min;
  let max;
  if (nested && typeof nested === "object") {
    ({ min, max } = nested);
  } else {
    min = spec[`${name}_min_mm`];
    max = spec[`${name}_max_mm`];
  }
  // Proto3 reports an unset bound as 0; no real band starts at 0 mm.
  min = num(min);
  max = num(max);
  if (min !== null && min <= 0) min = null;
  if (max !== null && max <= 0) max = null;
  return min === null && max === null ? null : { min, max };
}

function positive(...values) {
  for (const value of values) {
    const n = num(value);
    if (n !== null && n > 0) return n;
  }
  return null;
}

function normalizeSpec(raw) {
  let colors = raw.backgrounds ?? raw.background ?? raw.background_colors ?? [];
  if (typeof colors === "string") colors = colors.split(/[|,;\s]+/);
  colors = (Array.isArray(colors) ? colors : [])
    .map((c) => String(c).trim().toLowerCase())
    .filter((c) => /^#[0-9a-f]{6}$/.test(c));
  return {
    raw,
    id: String(raw.id ?? raw.spec_id ?? ""),
    country: raw.country ?? "",
    countryCode: raw.country_code ?? "",
    document: raw.document ?? raw.name ?? raw.id ?? "Document",
    widthMm: positive(raw.width_mm),
    heightMm: positive(raw.height_mm),
    dpi: positive(raw.dpi),
    widthPx: positive(raw.output_width_px, raw.width_px),
    heightPx: positive(raw.output_height_px, raw.height_px),
    head: pickRange(raw, "head"),
    eye: pickRange(raw, "eye_from_bottom"),
    top: pickRange(raw, "top_margin"),
    fileKb: raw.file_kb && typeof raw.file_kb === "object"
      ? rangeOrNull(raw.file_kb.min, raw.file_kb.max)
      : rangeOrNull(raw.file_min_kb, raw.file_max_kb),
    format: raw.format || null,
    medium: raw.medium ?? raw.print_or_digital ?? null,
    notes: raw.notes || "",
    colors,
  };
}

function rangeOrNull(min, max) {
  let lo = num(min);
  let hi = num(max);
  if (lo !== null && lo <= 0) lo = null;
  if (hi !== null && hi <= 0) hi = null;
  return lo === null && hi === null ? null : { min: lo, max: hi };
}

function specSize(spec) {
  return spec.widthMm && spec.heightMm ? `${fmt(spec.widthMm)} × ${fmt(spec.heightMm)} mm` : null;
}

function specPixels(spec) {
  if (!spec.widthPx || !spec.heightPx) return null;
  return `${spec.widthPx} × ${spec.heightPx} px${spec.dpi ? ` · ${fmt(spec.dpi, 0)} dpi` : ""}`;
}

// ---------------------------------------------------------------------------
// API client

class ApiError extends Error {
  constructor(status, code, message, details = {}, headers = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
    this.retryAfter = headers?.get?.("retry-after") ?? null;
  }
}

async function readError(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON: a proxy or the server itself failed before the API answered.
  }
  const err = body && body.error;
  if (err && typeof err === "object") {
    return new ApiError(response.status, err.code || "ERROR", err.message || response.statusText, err.details, response.headers);
  }
  const message = response.status >= 500
    ? "The server had a problem. Please try again in a moment."
    : `The request failed (${response.status} ${response.statusText}).`;
  return new ApiError(response.status, "HTTP_ERROR", message, {}, response.headers);
}

/**
 * Calls the API. `auth` adds the Bearer token (registering the device first if needed);
 * `reauth` retries once with a fresh token when the old one is refused.
 */
async function api(path, { method = "GET", json, form, auth = true, reauth = false, raw = false } = {}) {
  const headers = { Accept: raw ? "*/*" : "application/json" };
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form) {
    body = form;
  }
  const used = auth ? await ensureToken() : null;
  if (used) headers.Authorization = `Bearer ${used}`;

  let response;
  try {
    response = await fetch(path, { method, headers, body, cache: "no-store", credentials: "omit" });
  } catch {
    throw new ApiError(0, "NETWORK", "Couldn't reach the Likeness server. Check your connection and try again.");
  }
  if (!response.ok) {
    const error = await readError(response);
    if (response.status === 401 && auth && reauth && state.ageConfirmed) {
      // Parallel calls may all be refused; only the first drops the token, the rest reuse the new one.
      if (state.token === used) dropToken();
      return api(path, { method, json, form, auth, reauth: false, raw });
    }
    throw error;
  }
  if (raw) return response;
  if (response.status === 204) return null;
  return response.json();
}

async function fetchBlob(url) {
  if (!url) throw new ApiError(502, "BAD_REPLY", "The server did not say where to fetch the image.");
  const response = await api(url, { raw: true });
  return response.blob();
}

// ---------------------------------------------------------------------------
// State

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  registering: null,
  ageConfirmed: false,
  file: null,
  previewUrl: null,
  upload: null,
  uploadSeq: 0,
  uploading: false,
  specs: [],
  spec: null,
  specSeq: 0,
  making: false,
  result: null,
  resultSpec: null,
  photoUrl: null,
  sheetUrl: null,
  erasing: false,
  progressTimer: null,
};

// ---------------------------------------------------------------------------
// Device token

function ageConfirmed() {
  return $("age-ok").checked;
}

function saveToken(token) {
  state.token = token;
  sessionStorage.setItem(TOKEN_KEY, token);
  renderSession();
}

function dropToken() {
  state.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  renderSession();
}

function cleanLanguage() {
  const lang = (navigator.language || "en").trim();
  return /^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})*$/.test(lang) && lang.length <= 16 ? lang : "en";
}

async function ensureToken() {
  if (state.token) return state.token;
  if (!ageConfirmed()) {
    throw new ApiError(0, "AGE_NOT_CONFIRMED", "Please confirm that you are 13 or older first (step 1).");
  }
  if (!state.registering) {
    const model = (navigator.userAgent || "browser").trim().slice(0, 64) || "browser";
    state.registering = api("/v1/devices", {
      method: "POST",
      auth: false,
      json: {
        platform: "web",
        model,
        os_version: "web",
        app_version: "demo-1",
        language: cleanLanguage(),
        age_confirmed: true,
      },
    })
      .then((reply) => {
        if (!reply || !reply.token) throw new ApiError(502, "BAD_REPLY", "The server did not return a device token.");
        saveToken(reply.token);
        return reply.token;
      })
      .finally(() => {
        state.registering = null;
      });
  }
  return state.registering;
}

function renderSession() {
  const el = $("session-state");
  el.classList.toggle("session--on", Boolean(state.token));
  el.classList.toggle("session--busy", state.erasing);
  $("session-text").textContent = state.erasing
    ? "Deleting your data…"
    : state.token
      ? "Secure session active"
      : "Not connected";
  const del = $("delete-data");
  del.disabled = !state.token || state.erasing;
  $("delete-hint").textContent = state.erasing
    ? "Deletion in progress…"
    : state.token
      ? "Erases everything on every service, now."
      : "Nothing is stored yet.";
}

// ---------------------------------------------------------------------------
// Errors

function showError(error) {
  if (!(error instanceof ApiError)) {
    console.error(error);
    error = new ApiError(0, "CLIENT_ERROR", error?.message || "Something unexpected happened in the page.");
  }
  const status = error.status;
  let title = STATUS_TITLES[status] || (status >= 500 ? "Something went wrong on our side" : "Something went wrong");
  if (error.code === "AGE_NOT_CONFIRMED") title = "Please confirm your age";
  $("error-title").textContent = title;
  let message = error.message;
  if (status === 429 && error.retryAfter) message += ` Try again in ${error.retryAfter} s.`;
  $("error-message").textContent = message;

  const list = $("error-details");
  list.replaceChildren();
  const problems = Array.isArray(error.details?.problems) ? error.details.problems : [];
  for (const problem of problems.slice(0, 8)) {
    const field = String(problem.field || "").replace(/^body\./, "");
    list.append(h("li", null, field ? h("code", { text: field }) : null, field ? " — " : "", String(problem.problem || "")));
  }
  list.hidden = problems.length === 0;
  $("error-code").textContent = status ? `${error.code} · HTTP ${status}` : error.code === "NETWORK" ? "" : error.code;

  const box = $("error");
  box.hidden = false;
  box.scrollIntoView({ block: "nearest", behavior: "smooth" });
}

function clearError() {
  $("error").hidden = true;
}

// ---------------------------------------------------------------------------
// Steps enable/disable

function setStepsEnabled(enabled) {
  for (const id of ["step-photo", "step-doc", "step-options"]) $(id).disabled = !enabled;
  updateMake();
}

function lockAge(locked) {
  const box = $("age-ok");
  box.disabled = locked;
  $("age-hint").textContent = locked ? "Thanks — you can continue below." : "";
}

async function startSession() {
  clearError();
  try {
    $("age-hint").textContent = "Connecting securely…";
    await ensureToken();
    $("erasure").hidden = true;
    lockAge(true);
    setStepsEnabled(true);
    await loadCatalogs();
  } catch (error) {
    if (!state.token) {
      $("age-ok").checked = false;
      state.ageConfirmed = false;
      lockAge(false);
      setStepsEnabled(false);
    }
    showError(error);
  }
}

// ---------------------------------------------------------------------------
// Catalogs

async function loadCatalogs() {
  const tasks = [loadCountries(), loadOutfits(), loadPapers()];
  const results = await Promise.allSettled(tasks);
  const failed = results.find((r) => r.status === "rejected");
  if (failed) throw failed.reason;
}

async function loadCountries() {
  const select = $("country");
  select.replaceChildren(h("option", { value: "" }, "Loading countries…"));
  let reply;
  try {
    reply = await api("/v1/specs/countries", { reauth: true });
  } catch (error) {
    select.replaceChildren(h("option", { value: "" }, "Couldn't load countries — reload the page"));
    throw error;
  }
  const countries = (reply?.countries || []).slice().sort((a, b) => String(a.name).localeCompare(String(b.name)));
  select.replaceChildren(
    h("option", { value: "" }, "Choose a country…"),
    ...countries.map((c) => h("option", { value: c.code }, c.count ? `${c.name} (${c.count})` : c.name)),
  );
  // Preselect the country of the browser's locale (en-GB → GB) when the catalog has it.
  const region = (navigator.language || "").split(/[-_]/)[1]?.toUpperCase();
  if (region && countries.some((c) => c.code === region)) {
    select.value = region;
    await loadSpecs(region);
  } else {
    resetSpecSelect("Choose a country first");
  }
}

// Fills a <select> from a catalog list the server may not offer: `blank` first, then one option per item.
// The page works without the list, so only failures that are not "not available here" (404/501) are reported.
async function fillOptionalSelect(select, path, key, blank, label) {
  const first = () => h("option", { value: blank.value }, blank.text);
  try {
    const items = (await api(path, { reauth: true }))?.[key] || [];
    select.replaceChildren(first(), ...items.map((item) => h("option", { value: item.id }, label(item))));
    return items;
  } catch (error) {
    select.replaceChildren(first());
    if (error.status !== 404 && error.status !== 501) throw error;
    return [];
  }
}

async function loadOutfits() {
  await fillOptionalSelect($("outfit"), "/v1/outfits", "outfits", { value: "", text: "Keep my clothes" }, (o) => o.name || o.id);
}

async function loadPapers() {
  const select = $("paper");
  const label = (p) => (p.width_mm && p.height_mm ? `${p.name} — ${fmt(p.width_mm)} × ${fmt(p.height_mm)} mm` : p.name);
  try {
    const papers = await fillOptionalSelect(select, "/v1/papers", "papers", { value: "none", text: "No print sheet" }, label);
    const preferred = papers.find((p) => p.id === "4r") || papers[0];
    select.value = preferred ? preferred.id : "none";
  } finally {
    updateSheetFields();
  }
}

function resetSpecSelect(label) {
  const select = $("spec");
  select.replaceChildren(h("option", { value: "" }, label));
  select.disabled = true;
  state.specs = [];
  state.spec = null;
  renderSpec();
}

async function loadSpecs(country) {
  const seq = ++state.specSeq;
  if (!country) {
    resetSpecSelect("Choose a country first");
    return;
  }
  resetSpecSelect("Loading documents…");
  const reply = await api(`/v1/specs?country=${encodeURIComponent(country)}`, { reauth: true });
  if (seq !== state.specSeq) return; // A newer country was chosen meanwhile.
  const specs = (reply?.specs || []).map(normalizeSpec).filter((s) => s.id);
  state.specs = specs;
  const select = $("spec");
  if (specs.length === 0) {
    resetSpecSelect("No documents for this country");
    return;
  }
  select.replaceChildren(
    ...specs.map((s) => {
      const size = specSize(s);
      return h("option", { value: s.id }, size ? `${s.document} · ${size}` : s.document);
    }),
  );
  select.disabled = false;
  select.value = specs[0].id;
  state.spec = specs[0];
  renderSpec();
}

// ---------------------------------------------------------------------------
// Spec details and background choices

function colorChips(colors) {
  return h(
    "span",
    { class: "colors" },
    colors.map((c) => h("span", { class: "color-chip" }, h("span", { class: "color-chip__dot", style: { background: c } }), colorName(c))),
  );
}

function renderSpec() {
  const spec = state.spec;
  const card = $("spec-card");
  if (!spec) {
    card.hidden = true;
    renderSpecSwatches();
    updateMake();
    return;
  }
  const facts = [
    ["Photo size", specSize(spec)],
    ["Pixels", specPixels(spec)],
    ["Head height", fmtRange(spec.head, "mm") && `${fmtRange(spec.head, "mm")} (chin to crown)`],
    ["Eye line", fmtRange(spec.eye, "mm") && `${fmtRange(spec.eye, "mm")} from the bottom`],
    ["Top margin", fmtRange(spec.top, "mm")],
    ["Background", spec.colors.length ? colorChips(spec.colors) : "Plain, light"],
    ["File size", fmtRange(spec.fileKb, "KB")],
    ["Format", spec.format],
    ["Use", spec.medium ? { print: "Printed photo", digital: "Digital upload", both: "Print and digital" }[spec.medium] || spec.medium : null],
  ].filter(([, value]) => value);
  $("spec-facts").replaceChildren(...facts.flatMap(([label, value]) => [h("dt", { text: label }), h("dd", null, value)]));
  $("spec-notes").hidden = !spec.notes;
  $("spec-notes-text").textContent = spec.notes;
  card.hidden = false;

  if (spec.format && /png/i.test(spec.format)) $("format-png").checked = true;
  else if (spec.format && /jpe?g/i.test(spec.format)) $("format-jpeg").checked = true;

  renderSpecSwatches();
  updateMake();
}

function renderSpecSwatches() {
  const spec = state.spec;
  const colors = spec?.colors?.length ? spec.colors : [];
  const first = colors[0] || "#ffffff";
  $("bg-spec-swatch").style.background = first;
  $("bg-spec-name").textContent = colors.length ? colors.map(colorName).join(" / ") : "As required";
  const box = $("spec-swatches");
  if (colors.length < 2) {
    box.replaceChildren();
    return;
  }
  box.replaceChildren(
    ...colors.map((c, i) =>
      h(
        "label",
        { class: "swatch" },
        h("input", { type: "radio", name: "spec-color", value: c, checked: i === 0 }),
        h("span", { class: "swatch__dot", style: { background: c } }),
        colorName(c),
      ),
    ),
  );
}

function backgroundMode() {
  return document.querySelector('input[name="bg"]:checked')?.value || "spec";
}

function renderBackground() {
  const mode = backgroundMode();
  $("bg-spec-extra").hidden = mode !== "spec";
  $("bg-solid-extra").hidden = mode !== "solid";
  $("bg-gradient-extra").hidden = mode !== "gradient";
  $("bg-keep-extra").hidden = mode !== "keep";
  const solid = $("bg-color").value;
  const top = $("bg-grad-top").value;
  const bottom = $("bg-grad-bottom").value;
  $("bg-color-value").textContent = solid;
  $("bg-grad-top-value").textContent = top;
  $("bg-grad-bottom-value").textContent = bottom;
  $("bg-solid-swatch").style.background = solid;
  $("bg-gradient-swatch").style.background = `linear-gradient(${top}, ${bottom})`;
  // Keeping the original background turns beauty off on the server too; say so here.
  const keep = mode === "keep";
  for (const id of ["smoothing", "whitening"]) $(id).disabled = keep;
  $("beauty-group").classList.toggle("muted", keep);
}

function backgroundPayload() {
  const mode = backgroundMode();
  if (mode === "solid") return { mode: "solid", colors: [$("bg-color").value.toLowerCase()] };
  if (mode === "gradient") return { mode: "gradient", colors: [$("bg-grad-top").value.toLowerCase(), $("bg-grad-bottom").value.toLowerCase()] };
  if (mode === "keep") return { mode: "keep", colors: [] };
  // The spec's first colour is the default; another accepted colour is sent as a solid colour.
  const picked = document.querySelector('input[name="spec-color"]:checked')?.value;
  const colors = state.spec?.colors || [];
  if (picked && colors.length > 1 && picked !== colors[0]) return { mode: "solid", colors: [picked] };
  return { mode: "spec", colors: [] };
}

function updateSheetFields() {
  const none = $("paper").value === "none";
  for (const id of ["margin", "gap", "cut-marks"]) $(id).disabled = none;
}

// An empty field is null: the layout chooses the spacing that fits the most photos.
function mmValue(id) {
  const n = num(Number.parseFloat($(id).value));
  return n === null || n < 0 ? null : Math.min(n, 50);
}

// ---------------------------------------------------------------------------
// Photo choice and upload

function acceptable(file) {
  return file && (/^image\//.test(file.type) || /\.(heic|heif|jpe?g|png|webp)$/i.test(file.name));
}

function choosePhoto(file) {
  clearError();
  if (!acceptable(file)) {
    showError(new ApiError(0, "UNSUPPORTED_FORMAT", "Please choose an image file: JPEG, PNG, WebP or HEIC."));
    return;
  }
  state.file = file;
  state.upload = null;
  if (state.previewUrl) URL.revokeObjectURL(state.previewUrl);
  state.previewUrl = URL.createObjectURL(file);
  const img = $("preview-img");
  img.classList.remove("is-broken");
  img.src = state.previewUrl;
  $("preview-name").textContent = file.name || "Photo";
  $("preview-meta").textContent = `${fmtBytes(file.size)}${file.type ? ` · ${file.type.replace("image/", "").toUpperCase()}` : ""}`;
  $("dropzone-empty").hidden = true;
  $("preview").hidden = false;
  uploadCurrent().catch(() => {});
}

function setUploadState(kind, text) {
  const el = $("upload-state");
  el.className = `upload-state upload-state--${kind}`;
  el.textContent = text;
}

async function uploadCurrent() {
  const file = state.file;
  if (!file) throw new ApiError(0, "NO_PHOTO", "Please choose a photo first (step 2).");
  const seq = ++state.uploadSeq;
  state.uploading = true;
  state.upload = null;
  updateMake();
  setUploadState("busy", "Uploading securely…");
  try {
    const form = new FormData();
    form.append("file", file, file.name || "photo");
    const reply = await api("/v1/uploads", { method: "POST", form, reauth: true });
    if (seq !== state.uploadSeq) return state.upload;
    state.upload = reply;
    const size = reply.width && reply.height ? `${reply.width} × ${reply.height} px` : "";
    const kept = reply.stored === false ? "held in memory only" : `encrypted, deleted by ${fmtTime(reply.expires_at)}`;
    setUploadState("ok", `✓ Uploaded${size ? ` · ${size}` : ""} · ${kept}`);
    return reply;
  } catch (error) {
    if (seq === state.uploadSeq) {
      setUploadState("err", "Upload failed");
      showError(error);
    }
    throw error;
  } finally {
    if (seq === state.uploadSeq) {
      state.uploading = false;
      updateMake();
    }
  }
}

// ---------------------------------------------------------------------------
// Make the photo

function updateMake() {
  const button = $("make");
  let hint = "";
  if (state.erasing) hint = "Deleting your data…";
  else if (!state.token) hint = "Tick the box in step 1 to begin.";
  else if (!state.file) hint = "Choose a photo in step 2.";
  else if (state.uploading) hint = "Uploading your photo…";
  else if (!state.upload) hint = "The upload failed; choose the photo again.";
  else if (!state.spec) hint = "Choose a country and a document in step 3.";
  button.disabled = state.making || Boolean(hint);
  $("make-hint").textContent = state.making ? "This usually takes a few seconds." : hint;
}

function requestBody() {
  const spec = state.spec;
  const keep = backgroundMode() === "keep";
  const paper = $("paper").value;
  const outfit = $("outfit").value;
  return {
    upload_id: state.upload.upload_id,
    spec_id: spec.id,
    background: backgroundPayload(),
    beauty: {
      smoothing: keep ? 0 : Number.parseInt($("smoothing").value, 10) || 0,
      whitening: keep ? 0 : Number.parseInt($("whitening").value, 10) || 0,
    },
    outfit: outfit || null,
    output: {
      format: document.querySelector('input[name="format"]:checked')?.value === "png" ? "png" : "jpeg",
      dpi: null,
    },
    layout:
      paper && paper !== "none"
        ? { paper_id: paper, margin_mm: mmValue("margin"), gap_mm: mmValue("gap"), cut_marks: $("cut-marks").checked, dpi: 300 }
        : null,
  };
}

function setMaking(making) {
  state.making = making;
  const button = $("make");
  button.classList.toggle("is-busy", making);
  button.setAttribute("aria-busy", String(making));
  $("make-label").textContent = making ? "Making your photo…" : "Make my photo";
  $("results").setAttribute("aria-busy", String(making));
  clearInterval(state.progressTimer);
  if (making) {
    const started = performance.now();
    $("progress-time").textContent = "0 s";
    state.progressTimer = setInterval(() => {
      $("progress-time").textContent = `${Math.round((performance.now() - started) / 1000)} s`;
    }, 500);
    $("results-empty").hidden = true;
    $("results-done").hidden = true;
    $("results-progress").hidden = false;
  } else {
    $("results-progress").hidden = true;
    if (!state.result) $("results-empty").hidden = false;
  }
  updateMake();
}

async function make() {
  if (state.making) return;
  clearError();
  const spec = state.spec;
  if (!spec || !state.upload) {
    updateMake();
    return;
  }
  setMaking(true);
  try {
    let result;
    try {
      result = await api("/v1/id-photos", { method: "POST", json: requestBody() });
    } catch (error) {
      const uploadGone = (error.status === 404 || error.status === 410) && /upload/i.test(`${error.code} ${error.message}`);
      if ((error.status === 401 && state.ageConfirmed) || uploadGone) {
        // The session or the upload expired: register again if needed, send the photo again, retry once.
        if (error.status === 401) dropToken();
        await uploadCurrent();
        result = await api("/v1/id-photos", { method: "POST", json: requestBody() });
      } else {
        throw error;
      }
    }
    await showResult(result, spec);
  } catch (error) {
    if (!state.result) $("results-empty").hidden = false;
    else $("results-done").hidden = false;
    showError(error);
  } finally {
    setMaking(false);
  }
}

// ---------------------------------------------------------------------------
// Results

function extensionFor(format, blob) {
  const type = (blob?.type || "").toLowerCase();
  if (type.includes("png")) return "png";
  if (type.includes("jpeg") || type.includes("jpg")) return "jpg";
  return /png/i.test(format || "") ? "png" : "jpg";
}

function safeName(text) {
  return String(text || "photo").toLowerCase().replace(/[^a-z0-9._-]+/g, "-").replace(/^-+|-+$/g, "") || "photo";
}

function loadImage(img, url) {
  return new Promise((resolve, reject) => {
    img.onload = () => resolve();
    img.onerror = () => reject(new ApiError(0, "IMAGE_ERROR", "The image could not be displayed."));
    img.src = url;
  });
}

async function showResult(result, spec) {
  const [photoBlob, sheetBlob] = await Promise.all([
    fetchBlob(result.image_url),
    result.sheet_url ? fetchBlob(result.sheet_url) : Promise.resolve(null),
  ]);

  for (const url of [state.photoUrl, state.sheetUrl]) if (url) URL.revokeObjectURL(url);
  state.photoUrl = URL.createObjectURL(photoBlob);
  state.sheetUrl = sheetBlob ? URL.createObjectURL(sheetBlob) : null;
  state.result = result;
  state.resultSpec = spec;

  $("results-progress").hidden = true;
  $("results-empty").hidden = true;
  $("results-done").hidden = false;

  const name = safeName(result.spec_id || spec.id);
  const photo = $("result-photo");
  photo.alt = `Your ${spec.document} photo, ${result.width} × ${result.height} pixels`;
  await loadImage(photo, state.photoUrl);
  const download = $("download-photo");
  download.href = state.photoUrl;
  download.download = `id-photo-${name}.${extensionFor(result.format, photoBlob)}`;

  renderPhotoFacts(result, spec);
  renderReport(result.report, spec);
  renderLegend(result.report, spec);
  drawOverlay();

  const sheetCard = $("sheet-card");
  if (state.sheetUrl) {
    const sheet = $("sheet-photo");
    await loadImage(sheet, state.sheetUrl);
    const paperLabel = $("paper").selectedOptions[0]?.textContent?.split(" — ")[0] || "paper";
    const count = num(result.sheet_photo_count);
    $("sheet-caption").textContent = `${count ? `${count} photo${count === 1 ? "" : "s"}` : "Photos"} on ${paperLabel}, ready to print at 100% scale.`;
    sheet.alt = `Print sheet with ${count || "several"} copies of your ID photo on ${paperLabel}`;
    const sheetDownload = $("download-sheet");
    sheetDownload.href = state.sheetUrl;
    sheetDownload.download = `id-sheet-${name}.${extensionFor(result.format, sheetBlob)}`;
    sheetCard.hidden = false;
  } else {
    sheetCard.hidden = true;
    $("sheet-photo").removeAttribute("src");
    $("download-sheet").href = "#";
  }

  if (window.matchMedia("(max-width: 979px)").matches) {
    $("results").scrollIntoView({ behavior: "smooth", block: "start" });
  }
  $("results-title").focus({ preventScroll: true });
}

function renderPhotoFacts(result, spec) {
  const facts = [
    ["Size", `${result.width} × ${result.height} px`],
    ["Print", specSize(spec) ? `${specSize(spec)}${result.dpi ? ` @ ${result.dpi} dpi` : ""}` : result.dpi ? `${result.dpi} dpi` : null],
    ["File", `${String(result.format || "").toUpperCase()} · ${fmtBytes(result.size_bytes)}`],
    result.stored === false ? ["Stored", "Not stored (memory only)"] : ["Deleted by", fmtTime(result.expires_at)],
  ].filter(([, v]) => v);
  $("photo-facts").replaceChildren(...facts.flatMap(([label, value]) => [h("dt", { text: label }), h("dd", { text: value })]));
}

function severityClass(severity) {
  const s = String(severity || "").toLowerCase();
  if (s === "error" || s === "fatal" || s === "critical") return "fail";
  if (s === "warning" || s === "warn") return "warn";
  return "info";
}

const BADGE = { pass: "✓", warn: "!", fail: "✕", info: "i" };

function badge(kind) {
  return h("span", { class: `badge badge--${kind}`, "aria-hidden": "true" }, BADGE[kind]);
}

function allowedText(allowed) {
  if (!allowed || typeof allowed !== "object") return null;
  const min = num(allowed.min);
  const max = num(allowed.max);
  // Proto3 drops unset bounds to 0; a 0–0 band means "no band given".
  if ((min === null || min === 0) && (max === null || max === 0)) return null;
  if (min !== null && max !== null && max > 0) return min < 0 ? `${fmt(min, 2)} to ${fmt(max, 2)}` : `${fmt(min, 2)}–${fmt(max, 2)}`;
  if (max !== null && max > 0) return `≤ ${fmt(max, 2)}`;
  return `≥ ${fmt(min, 2)}`;
}

function renderReport(report, spec) {
  const box = $("report");
  if (!report) {
    box.replaceChildren(h("p", { class: "muted" }, "No compliance report was returned."));
    return;
  }
  const issues = Array.isArray(report.issues) ? report.issues : [];
  const kinds = issues.map((i) => severityClass(i.severity));
  const errors = kinds.filter((k) => k === "fail").length;
  const warnings = kinds.filter((k) => k === "warn").length;
  const passed = report.passed !== false && errors === 0;

  let verdict;
  if (!passed) {
    verdict = h(
      "div",
      { class: "verdict verdict--fail" },
      badge("fail"),
      h("div", null, `Does not meet the ${spec.document} rules`, h("small", null, `${errors || "Some"} problem${errors === 1 ? "" : "s"} to fix — try another photo.`)),
    );
  } else if (warnings) {
    verdict = h(
      "div",
      { class: "verdict verdict--warn" },
      badge("warn"),
      h("div", null, "Passes, with advice", h("small", null, `${warnings} thing${warnings === 1 ? "" : "s"} worth checking before you submit it.`)),
    );
  } else {
    verdict = h(
      "div",
      { class: "verdict verdict--pass" },
      badge("pass"),
      h("div", null, "Passes every check", h("small", null, `Meets the ${spec.document} requirements we can measure.`)),
    );
  }

  const order = { fail: 0, warn: 1, info: 2 };
  const sorted = issues.map((issue, i) => ({ issue, kind: kinds[i] })).sort((a, b) => order[a.kind] - order[b.kind]);
  const items = sorted.map(({ issue, kind }) => {
    const allowed = allowedText(issue.allowed);
    const measured = num(issue.measured);
    const meta = [measured !== null ? `measured ${fmt(measured, 2)}` : null, allowed ? `allowed ${allowed}` : null].filter(Boolean).join(" · ");
    return h(
      "li",
      { class: `issue issue--${kind}` },
      badge(kind),
      h(
        "div",
        { class: "issue__body" },
        h("span", { class: "issue__message", text: issue.message || issue.code }),
        meta ? h("span", { class: "issue__meta", text: meta }) : null,
        issue.code
          ? h("span", {
              class: "issue__code",
              text: `${issue.code} · ${kind === "fail" ? "error" : kind === "warn" ? "warning" : "note"}${issue.remedy === "fixed" ? " · fixed by Likeness" : issue.remedy === "retake" ? " · retake" : ""}`,
            })
          : null,
      ),
    );
  });

  const m = report.measurements || {};
  const headOk = inRange(m.head_height_mm, spec.head);
  const eyeOk = inRange(m.eye_line_from_bottom_mm, spec.eye);
  const measured = [
    ["Head height", positive(m.head_height_mm) ? `${fmt(m.head_height_mm)} mm${spec.head ? ` (allowed ${fmtRange(spec.head, "mm")})` : ""}` : null, headOk],
    [
      "Eye line",
      positive(m.eye_line_from_bottom_mm) ? `${fmt(m.eye_line_from_bottom_mm)} mm from bottom${spec.eye ? ` (allowed ${fmtRange(spec.eye, "mm")})` : ""}` : null,
      eyeOk,
    ],
    ["Head pose", [m.yaw, m.pitch, m.roll].some((v) => num(v) !== null) ? `yaw ${fmt(m.yaw)}° · pitch ${fmt(m.pitch)}° · roll ${fmt(m.roll)}°` : null, null],
  ].filter(([, v]) => v);

  const children = [verdict];
  if (items.length) children.push(h("ul", { class: "issues", "aria-label": "Findings" }, items));
  else children.push(h("ul", { class: "issues", "aria-label": "Findings" }, h("li", { class: "issue issue--pass" }, badge("pass"), h("div", { class: "issue__body" }, h("span", { class: "issue__message" }, "No problems found")))));
  if (measured.length) {
    children.push(h("p", { class: "measure-title" }, "Measurements"));
    children.push(
      h(
        "dl",
        { class: "facts" },
        measured.flatMap(([label, value, ok]) => [
          h("dt", { text: label }),
          h("dd", null, ok === false ? h("span", { class: "issue__message" }, `⚠ ${value}`) : value),
        ]),
      ),
    );
  }
  box.replaceChildren(...children);
}

function inRange(value, range) {
  const v = positive(value);
  if (v === null || !range) return null;
  if (range.min !== null && v < range.min - 1e-6) return false;
  if (range.max !== null && v > range.max + 1e-6) return false;
  return true;
}

function renderLegend(report, spec) {
  const m = report?.measurements || {};
  $("legend-head").textContent = positive(m.head_height_mm)
    ? `Head height ${fmt(m.head_height_mm)} mm (chin to crown)`
    : "Head height (chin to crown)";
  $("legend-eye").textContent = positive(m.eye_line_from_bottom_mm) ? `Eye line ${fmt(m.eye_line_from_bottom_mm)} mm from bottom` : "Eye line";
  const band = fmtRange(spec.eye, "mm");
  $("legend-band").textContent = band ? `Allowed eye line ${band}` : "Allowed eye line band";
  $("legend-band").parentElement.hidden = !band;
}

// ---------------------------------------------------------------------------
// Measurement overlay

function measurementsUsable(m) {
  return m && positive(m.crown_y_px) !== null && positive(m.chin_y_px) !== null && m.chin_y_px > m.crown_y_px;
}

function drawOverlay() {
  const canvas = $("overlay");
  const img = $("result-photo");
  const result = state.result;
  const m = result?.report?.measurements;
  const usable = measurementsUsable(m);
  const toggle = $("overlay-toggle");
  toggle.disabled = !usable;
  const show = Boolean(result && usable && toggle.checked && img.complete && img.naturalWidth);
  canvas.hidden = !show;
  $("legend").classList.toggle("is-off", !show);
  if (!show) return;

  const rect = img.getBoundingClientRect();
  if (!rect.width || !rect.height) return;
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(rect.width * dpr);
  canvas.height = Math.round(rect.height * dpr);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, rect.width, rect.height);

  // Measurements are in the output photo's pixels; draw in display pixels.
  const W = positive(result.width, img.naturalWidth);
  const H = positive(result.height, img.naturalHeight);
  const sx = rect.width / W;
  const sy = rect.height / H;
  const spec = state.resultSpec;
  const pxPerMm = spec?.heightMm ? H / spec.heightMm : positive(m.head_height_mm) ? m.head_height_px / m.head_height_mm : null;

  const crownY = m.crown_y_px * sy;
  const chinY = m.chin_y_px * sy;
  const eyePx = positive(m.eye_line_from_bottom_px) ?? (positive(m.eye_line_from_bottom_mm) && pxPerMm ? m.eye_line_from_bottom_mm * pxPerMm : null);
  const eyeY = eyePx !== null ? (H - eyePx) * sy : null;
  const width = rect.width;
  const font = `600 ${Math.max(10, Math.min(12, width / 26))}px ui-sans-serif, system-ui, -apple-system, "Segoe UI", Roboto, sans-serif`;
  ctx.font = font;
  ctx.textBaseline = "middle";

  // Allowed eye band.
  if (spec?.eye && pxPerMm) {
    // An open-ended band (only a minimum or only a maximum) runs to the photo's edge.
    const top = spec.eye.max !== null ? (H - spec.eye.max * pxPerMm) * sy : 0;
    const bottom = spec.eye.min !== null ? (H - spec.eye.min * pxPerMm) * sy : rect.height;
    const bandOk = eyeY === null || (eyeY >= top - 0.5 && eyeY <= bottom + 0.5);
    ctx.fillStyle = bandOk ? "rgba(34, 197, 94, 0.20)" : "rgba(239, 68, 68, 0.18)";
    ctx.fillRect(0, top, width, Math.max(1, bottom - top));
    ctx.setLineDash([4, 3]);
    ctx.strokeStyle = bandOk ? "rgba(22, 163, 74, 0.9)" : "rgba(220, 38, 38, 0.9)";
    ctx.lineWidth = 1;
    line(ctx, 0, top, width, top);
    line(ctx, 0, bottom, width, bottom);
    ctx.setLineDash([]);
    // Keep the band's label clear of the eye line's own label.
    const bandLabelY = eyeY !== null && eyeY > bottom ? top - 11 : bottom + 11;
    label(ctx, `eye band ${fmtRange(spec.eye, "mm")}`, width - 6, bandLabelY, "right", bandOk ? "#15803d" : "#b91c1c");
  }

  // Crown and chin lines.
  const headOk = inRange(m.head_height_mm, spec?.head);
  const headColor = headOk === false ? "#ef4444" : "#0ea5e9";
  ctx.strokeStyle = headColor;
  ctx.lineWidth = 1.5;
  ctx.setLineDash([6, 4]);
  line(ctx, 0, crownY, width, crownY);
  line(ctx, 0, chinY, width, chinY);
  ctx.setLineDash([]);
  label(ctx, "crown", width - 6, crownY - 10, "right", headColor);
  label(ctx, "chin", width - 6, chinY + 10, "right", headColor);

  // Head-height bracket on the left.
  const bx = Math.max(14, width * 0.08);
  ctx.lineWidth = 2;
  line(ctx, bx, crownY, bx, chinY);
  line(ctx, bx - 6, crownY, bx + 6, crownY);
  line(ctx, bx - 6, chinY, bx + 6, chinY);
  const headMm = positive(m.head_height_mm) ?? (pxPerMm ? (m.chin_y_px - m.crown_y_px) / pxPerMm : null);
  if (headMm !== null) label(ctx, `${fmt(headMm)} mm`, bx + 8, (crownY + chinY) / 2, "left", headColor);

  // Eye line.
  if (eyeY !== null) {
    const eyeOk = inRange(m.eye_line_from_bottom_mm, spec?.eye);
    const eyeColor = eyeOk === false ? "#ef4444" : "#d946ef";
    ctx.strokeStyle = eyeColor;
    ctx.lineWidth = 2;
    line(ctx, 0, eyeY, width, eyeY);
    const eyeMm = positive(m.eye_line_from_bottom_mm) ?? (pxPerMm ? eyePx / pxPerMm : null);
    label(ctx, eyeMm !== null ? `eye line ${fmt(eyeMm)} mm` : "eye line", width - 6, eyeY - 11, "right", eyeColor);
  }
}

function line(ctx, x1, y1, x2, y2) {
  ctx.beginPath();
  ctx.moveTo(x1, y1);
  ctx.lineTo(x2, y2);
  ctx.stroke();
}

function label(ctx, text, x, y, align, color) {
  const padX = 5;
  const height = 17;
  const textWidth = ctx.measureText(text).width;
  const boxWidth = textWidth + padX * 2;
  const left = align === "right" ? x - boxWidth : x;
  const canvasHeight = ctx.canvas.height / (window.devicePixelRatio || 1);
  y = Math.min(Math.max(y, height / 2 + 1), canvasHeight - height / 2 - 1);
  ctx.fillStyle = "rgba(15, 19, 32, 0.78)";
  roundRect(ctx, left, y - height / 2, boxWidth, height, 4);
  ctx.fill();
  ctx.fillStyle = "#fff";
  ctx.textAlign = "left";
  ctx.fillText(text, left + padX, y + 0.5);
  ctx.fillStyle = color;
  ctx.fillRect(left, y - height / 2 + 3, 2, height - 6);
}

function roundRect(ctx, x, y, w, h2, r) {
  ctx.beginPath();
  if (ctx.roundRect) {
    ctx.roundRect(x, y, w, h2, r);
  } else {
    ctx.rect(x, y, w, h2);
  }
}

// ---------------------------------------------------------------------------
// Delete all my data

async function deleteAll() {
  clearError();
  state.erasing = true;
  renderSession();
  updateMake();
  const panel = $("erasure");
  try {
    const started = await api("/v1/me", { method: "DELETE" });
    // The token is refused from now on.
    dropToken();
    panel.hidden = false;
    renderErasure(started);
    panel.focus({ preventScroll: false });
    let status = started;
    let failures = 0;
    let polls = 0;
    while (status.status !== "completed") {
      polls += 1;
      await sleep(polls > 240 ? POLL_MS * 10 : POLL_MS);
      try {
        status = await api(`/v1/me/erasures/${encodeURIComponent(started.erasure_id)}`, { auth: false });
        failures = 0;
        $("erasure-note").textContent = "";
      } catch (error) {
        failures += 1;
        $("erasure-note").textContent = "Still working… (the status service did not answer; retrying)";
        if (failures > 20) throw error;
        continue;
      }
      renderErasure(status);
    }
    sessionStorage.clear();
    resetPage();
    $("erasure-note").textContent = "All your data has been deleted and the page has been reset. Tick the box in step 1 to start again.";
  } catch (error) {
    showError(error);
  } finally {
    state.erasing = false;
    renderSession();
    updateMake();
  }
}

function countsText(counts) {
  const entries = Object.entries(counts || {}).filter(([, n]) => num(n) !== null);
  if (!entries.length) return "nothing held";
  return entries.map(([category, n]) => `${category.replace(/_/g, " ")}: ${n}`).join(", ");
}

function renderErasure(erasure) {
  const done = erasure.status === "completed";
  const pill = $("erasure-status");
  pill.textContent = done ? "completed" : String(erasure.status || "requested").replace(/_/g, " ");
  pill.classList.toggle("pill--done", done);
  $("erasure-deadline").textContent = done
    ? erasure.completed_at
      ? `finished ${fmtTime(erasure.completed_at)}`
      : ""
    : erasure.deadline
      ? `guaranteed by ${fmtTime(erasure.deadline)}`
      : "";

  const receipts = Array.isArray(erasure.receipts) ? erasure.receipts : [];
  const rows = receipts.map((r) =>
    h(
      "tr",
      null,
      h("td", { text: r.holder }),
      h("td", { class: "num", text: countsText(r.erased) }),
      h("td", { class: "num", text: countsText(r.remaining) }),
      h("td", { class: r.done || done ? "yes" : "no", text: r.done || done ? "✓ yes" : `working (${r.attempts || 0})` }),
    ),
  );
  if (!rows.length) rows.push(h("tr", null, h("td", { class: "empty-row", colspan: "4", text: "Waiting for the services to answer…" })));
  $("receipts-body").replaceChildren(...rows);

  const hash = erasure.ledger_hash || "";
  $("ledger").hidden = !hash;
  $("ledger-hash").textContent = hash;
}

function resetPage() {
  for (const url of [state.previewUrl, state.photoUrl, state.sheetUrl]) if (url) URL.revokeObjectURL(url);
  Object.assign(state, {
    token: null,
    file: null,
    previewUrl: null,
    upload: null,
    uploading: false,
    specs: [],
    spec: null,
    result: null,
    resultSpec: null,
    photoUrl: null,
    sheetUrl: null,
    ageConfirmed: false,
  });
  state.uploadSeq += 1;
  state.specSeq += 1;
  $("maker").reset();
  $("age-ok").checked = false;
  lockAge(false);
  $("photo-input").value = "";
  $("preview").hidden = true;
  $("preview-img").removeAttribute("src");
  $("dropzone-empty").hidden = false;
  setUploadState("busy", "");
  $("upload-state").className = "upload-state";
  $("country").replaceChildren(h("option", { value: "" }, "Loading countries…"));
  $("outfit").replaceChildren(h("option", { value: "" }, "Keep my clothes"));
  $("paper").replaceChildren(h("option", { value: "none" }, "No print sheet"));
  resetSpecSelect("Choose a country first");
  renderBackground();
  updateSheetFields();
  $("smoothing-value").textContent = "0";
  $("whitening-value").textContent = "0";
  $("result-photo").removeAttribute("src");
  $("sheet-photo").removeAttribute("src");
  $("download-photo").href = "#";
  $("download-sheet").href = "#";
  $("results-done").hidden = true;
  $("results-progress").hidden = true;
  $("results-empty").hidden = false;
  setStepsEnabled(false);
  renderSession();
}

// ---------------------------------------------------------------------------
// Wiring

function wire() {
  $("age-ok").addEventListener("change", (event) => {
    state.ageConfirmed = event.target.checked;
    if (event.target.checked && !state.token) startSession();
  });

  const input = $("photo-input");
  input.addEventListener("change", () => {
    if (input.files && input.files[0]) choosePhoto(input.files[0]);
    // Let the same file be chosen again (for example after a failed upload).
    input.value = "";
  });

  const zone = $("dropzone");
  const stepDisabled = () => $("step-photo").disabled;
  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (event) => {
      event.preventDefault();
      if (stepDisabled()) {
        event.dataTransfer.dropEffect = "none";
        return;
      }
      event.dataTransfer.dropEffect = "copy";
      zone.classList.add("is-dragover");
    });
  }
  for (const type of ["dragleave", "dragend"]) {
    zone.addEventListener(type, (event) => {
      if (event.type === "dragleave" && zone.contains(event.relatedTarget)) return;
      zone.classList.remove("is-dragover");
    });
  }
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("is-dragover");
    if (stepDisabled()) return;
    const file = [...(event.dataTransfer?.files || [])].find(acceptable) || event.dataTransfer?.files?.[0];
    if (file) choosePhoto(file);
  });
  // A photo dropped beside the zone must not navigate away from the page.
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());

  $("preview-img").addEventListener("error", (event) => {
    // Browsers cannot show HEIC; the server still can read it.
    if (!event.target.getAttribute("src")) return;
    event.target.classList.add("is-broken");
    event.target.alt = "No preview for this format — it will still be processed";
  });

  $("country").addEventListener("change", (event) => {
    clearError();
    loadSpecs(event.target.value).catch(showError);
  });
  $("spec").addEventListener("change", (event) => {
    state.spec = state.specs.find((s) => s.id === event.target.value) || null;
    renderSpec();
  });

  for (const radio of document.querySelectorAll('input[name="bg"]')) radio.addEventListener("change", renderBackground);
  const pick = (mode) => () => {
    $(`bg-${mode}`).checked = true;
    renderBackground();
  };
  $("bg-color").addEventListener("input", pick("solid"));
  $("bg-grad-top").addEventListener("input", pick("gradient"));
  $("bg-grad-bottom").addEventListener("input", pick("gradient"));

  for (const id of ["smoothing", "whitening"]) {
    $(id).addEventListener("input", (event) => {
      $(`${id}-value`).textContent = event.target.value;
    });
  }
  $("paper").addEventListener("change", updateSheetFields);

  $("maker").addEventListener("submit", (event) => {
    event.preventDefault();
    make();
  });

  $("overlay-toggle").addEventListener("change", drawOverlay);
  if ("ResizeObserver" in window) new ResizeObserver(() => drawOverlay()).observe($("result-photo"));
  else window.addEventListener("resize", drawOverlay);

  $("error-close").addEventListener("click", clearError);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !$("error").hidden && !$("delete-dialog").open) clearError();
  });

  const dialog = $("delete-dialog");
  $("delete-data").addEventListener("click", () => {
    if (typeof dialog.showModal === "function") dialog.showModal();
    else if (window.confirm("Delete all your data? This cannot be undone.")) deleteAll();
  });
  dialog.addEventListener("close", () => {
    if (dialog.returnValue === "confirm") deleteAll();
    dialog.returnValue = "";
  });

  $("copy-ledger").addEventListener("click", async () => {
    const button = $("copy-ledger");
    try {
      await navigator.clipboard.writeText($("ledger-hash").textContent);
      button.textContent = "Copied";
    } catch {
      button.textContent = "Select and copy";
    }
    setTimeout(() => {
      button.textContent = "Copy";
    }, 1500);
  });
}

function init() {
  wire();
  renderBackground();
  updateSheetFields();
  renderSession();
  if (state.token) {
    // A token from earlier in this tab means the age box was already ticked.
    $("age-ok").checked = true;
    state.ageConfirmed = true;
    startSession();
  } else {
    setStepsEnabled(false);
  }
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
else init();
