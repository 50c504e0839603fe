// The device page's script (served compiled by tools/sim/dashboard.ts). One live stream of
// server-sent events: a snapshot, then changes. Everything kept here is bounded: points
// within the chart window (and at most MAX_POINTS a key), MAX_EVENTS events, MAX_LINES
// console and log lines. Plain DOM and uPlot, no framework.

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
type Attrs = { [key: string]: Json };
interface Point { ts: number; values: Attrs }
interface DeviceState { name: string; online: boolean; clientId: string | null; lastSeen: number | null; client: Attrs; shared: Attrs; telemetry: Point[] }
interface Line { at: number; line: string }
type Change =
  | { kind: "snapshot"; now: number; windowMinutes: number; canBuild: boolean; devices: DeviceState[]; console: Line[]; log: Line[] }
  | { kind: "session"; device: string; online: boolean; clientId: string | null }
  | { kind: "seen"; device: string; at: number }
  | { kind: "telemetry"; device: string; points: Point[] }
  | { kind: "client"; device: string; values: Attrs }
  | { kind: "shared"; device: string; values: Attrs; deleted: string[] }
  | { kind: "console"; at: number; line: string }
  | { kind: "log"; at: number; line: string };
interface OfferedImage { id: string; board: string; title: string; version: string; size: number }

const MAX_POINTS = 5000;
const MAX_EVENTS = 200;
const MAX_LINES = 500;
/** Telemetry keys shown in the OTA box, not charted. */
const OTA_KEYS = ["fw_state", "fw_progress", "fw_error"];
/** Non-numeric telemetry that goes on the timeline. */
const EVENT_KEYS = ["sensor_error", "fw_state", "fw_error"];
const COLORS = ["#2f6fdb", "#d9480f", "#2b8a3e", "#862e9c", "#c2255c", "#1098ad", "#5c940d", "#e67700"];

interface Series { ts: number[]; values: number[]; plot: uPlot | null; card: HTMLElement; latest: HTMLElement; color: string }
interface TimelineEvent { ts: number; key: string; text: string }

interface DeviceView {
  state: DeviceState;
  root: HTMLElement;
  badge: HTMLElement;
  facts: HTMLElement;
  charts: HTMLElement;
  series: Map<string, Series>;
  events: TimelineEvent[];
  eventList: HTMLElement;
  clientTable: HTMLElement;
  sharedTable: HTMLElement;
  otaStatus: HTMLElement;
  otaProgress: HTMLProgressElement;
}

let windowMinutes = 5;
let canBuild = false;
let images: OfferedImage[] = [];
const views = new Map<string, DeviceView>();
const devicesRoot = byId("devices");

function byId(id: string): HTMLElement {
  const found = document.getElementById(id);
  if (!found) throw new Error("page is missing #" + id);
  return found;
}

/** An element with attributes and children: el("td", {class: "value"}, "text"). */
function el<K extends keyof HTMLElementTagNameMap>(tag: K, attributes: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const made = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) made.setAttribute(name, value);
  for (const child of children) made.append(child);
  return made;
}

function shown(value: Json | undefined): string {
  return value === undefined ? "" : typeof value === "string" ? value : JSON.stringify(value);
}

function clock(ts: number): string {
  // h23, not hour12: false, which some ICU data (Node's) turn into 24:05 after midnight.
  return new Date(ts).toLocaleTimeString([], { hourCycle: "h23" });
}

function ago(ts: number | null): string {
  if (ts === null) return "never";
  const s = Math.max(0, Math.round((Date.now() - ts) / 1000));
  return s < 60 ? s + " s ago" : s < 3600 ? Math.floor(s / 60) + " min ago" : clock(ts);
}

async function post(path: string, body: object | Blob, query = ""): Promise<Json> {
  const response = await fetch(path + query, {
    method: "POST",
    headers: { "content-type": body instanceof Blob ? "application/octet-stream" : "application/json" },
    body: body instanceof Blob ? body : JSON.stringify(body),
  });
  let answer: Json = null;
  try {
    answer = (await response.json()) as Json;
  } catch {
    throw new Error("the emulator answered " + response.status + " without JSON");
  }
  if (!response.ok) {
    const error = answer !== null && typeof answer === "object" && !Array.isArray(answer) ? answer.error : null;
    throw new Error(typeof error === "string" ? error : "the emulator answered " + response.status);
  }
  return answer;
}

function say(target: HTMLElement, text: string, ok: boolean): void {
  target.textContent = text;
  target.className = "result " + (ok ? "ok" : "error");
}

// ---- one device ----

function makeView(state: DeviceState): DeviceView {
  const badge = el("span", { class: "badge" });
  const facts = el("div", { class: "facts" });
  const charts = el("div", { class: "charts" });
  const eventList = el("ul", { class: "events" });
  const clientTable = el("table", { class: "client" });
  const sharedTable = el("table", { class: "shared" });
  const otaStatus = el("div", { class: "ota-status" });
  const otaProgress = el("progress", { max: "100", value: "0" });
  const root = el(
    "section",
    { class: "device", "data-device": state.name },
    el("div", { class: "head" }, el("h2", {}, state.name), badge, facts),
    charts,
    el(
      "div",
      { class: "columns" },
      el("div", { class: "box" }, el("h3", {}, "Events"), eventList),
      el("div", { class: "box" }, el("h3", {}, "Client attributes"), clientTable),
      el("div", { class: "box" }, el("h3", {}, "Shared attributes"), sharedTable, sharedForm(state.name)),
      el(
        "div",
        { class: "stack" },
        el("div", { class: "box" }, el("h3", {}, "RPC"), rpcForm(state.name)),
        el("div", { class: "box" }, el("h3", {}, "Firmware update"), otaStatus, otaProgress, otaForm(state.name))
      )
    )
  );
  const view: DeviceView = { state, root, badge, facts, charts, series: new Map(), events: [], eventList, clientTable, sharedTable, otaStatus, otaProgress };
  addPoints(view, state.telemetry);
  return view;
}

function sharedForm(device: string): HTMLElement {
  const key = el("input", { type: "text", name: "key", class: "key", placeholder: "key", required: "" });
  const value = el("input", { type: "text", name: "value", class: "json", placeholder: "JSON value, e.g. 5000" });
  const result = el("p", { class: "result" });
  const form = el("form", { class: "shared-form" }, key, value, el("button", { type: "submit" }, "Set"), result);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    say(result, "sending…", true);
    post("/api/attr", { device, key: key.value, value: value.value }).then(
      (answer) => say(result, attributeAnswer(answer), !/config_error":"[^"]/.test(JSON.stringify(answer))),
      (e: Error) => say(result, e.message, false)
    );
  });
  return form;
}

/** What the device said to a shared attribute change, in words. */
function attributeAnswer(answer: Json): string {
  const fields = answer !== null && typeof answer === "object" && !Array.isArray(answer) ? answer : {};
  if (fields.online !== true) return "saved; the device is offline and asks for it when it connects";
  const said = fields.deviceSaid;
  if (said === null || typeof said !== "object" || Array.isArray(said)) return "saved; the device did not answer within 5 s";
  return said.config_error ? "the device refused: " + shown(said.config_error) : "applied by the device";
}

function rpcForm(device: string): HTMLElement {
  const method = el("input", { type: "text", name: "method", class: "method", placeholder: "method", value: "getStatus", required: "" });
  const params = el("input", { type: "text", name: "params", class: "json", placeholder: "params (JSON), e.g. {}" });
  const result = el("pre", { class: "result" });
  const send = el("button", { type: "submit" }, "Send");
  const form = el("form", { class: "rpc-form" }, method, params, send, result);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    send.disabled = true;
    say(result, "waiting for the reply…", true);
    post("/api/rpc", { device, method: method.value, params: params.value })
      .then(
        (answer) => {
          const reply = answer !== null && typeof answer === "object" && !Array.isArray(answer) ? answer.reply : null;
          say(result, JSON.stringify(reply, null, 1), true);
        },
        (e: Error) => say(result, e.message, false)
      )
      .finally(() => (send.disabled = false));
  });
  return form;
}

function otaForm(device: string): HTMLElement {
  const pick = el("select", { name: "image" });
  const version = el("input", { type: "text", name: "version", class: "key", placeholder: "version, e.g. 1.1.0" });
  const file = el("input", { type: "file", name: "file", accept: ".js" });
  const result = el("p", { class: "result" });
  const fill = () => {
    pick.replaceChildren();
    if (canBuild) pick.append(el("option", { value: "build" }, "this device's image, built at the version below"));
    for (const image of images) pick.append(el("option", { value: image.id }, image.id + " (" + image.version + ", " + Math.round(image.size / 1024) + " KB)"));
    pick.append(el("option", { value: "upload" }, "a file from this computer…"));
    changed();
  };
  const changed = () => {
    const image = images.find((i) => i.id === pick.value);
    if (image) version.value = image.version;
    file.hidden = pick.value !== "upload";
  };
  pick.addEventListener("change", changed);
  pick.addEventListener("focus", () => void refreshImages().then(() => fill()));
  const form = el("form", { class: "ota-form" }, pick, version, file, el("button", { type: "submit" }, "Assign"), result);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    say(result, pick.value === "build" ? "building…" : "assigning…", true);
    let sent: Promise<Json>;
    if (pick.value === "upload") {
      const chosen = file.files && file.files[0];
      if (!chosen) return say(result, "choose a file first", false);
      const query = "?" + new URLSearchParams({ device, version: version.value, name: chosen.name }).toString();
      sent = post("/api/ota/upload", chosen, query);
    } else if (pick.value === "build") sent = post("/api/ota", { device, build: true, version: version.value });
    else sent = post("/api/ota", { device, image: pick.value, version: version.value });
    sent.then(
      (answer) => {
        const fields = answer !== null && typeof answer === "object" && !Array.isArray(answer) ? answer : {};
        say(result, "assigned " + version.value + (fields.online === true ? "; the device starts the download" : "; the device is offline and starts when it connects"), true);
      },
      (e: Error) => say(result, e.message, false)
    );
  });
  fill();
  otaFillers.push(fill);
  return form;
}
const otaFillers: (() => void)[] = [];

async function refreshImages(): Promise<void> {
  try {
    const response = await fetch("/api/images");
    if (response.ok) images = (await response.json()) as OfferedImage[];
  } catch {
    // Kept as they were; the link badge says when the emulator is gone.
  }
}

/** Telemetry into the chart series and the timeline, each point at its own ts (backlog included). */
function addPoints(view: DeviceView, points: Point[]): void {
  for (const point of points) {
    for (const [key, value] of Object.entries(point.values)) {
      if (typeof value === "number" && !OTA_KEYS.includes(key)) addSample(view, key, point.ts, value);
      else if (EVENT_KEYS.includes(key) || typeof value !== "number") addEvent(view, { ts: point.ts, key, text: key + ": " + shown(value) });
      if (OTA_KEYS.includes(key)) otaTelemetry(view, key, value);
    }
  }
}

function addSample(view: DeviceView, key: string, ts: number, value: number): void {
  let series = view.series.get(key);
  if (!series) {
    const latest = el("span", { class: "latest" });
    const card = el("div", { class: "chart", "data-key": key, "data-points": "0" }, el("h3", {}, key, latest));
    series = { ts: [], values: [], plot: null, card, latest, color: COLORS[view.series.size % COLORS.length] };
    view.series.set(key, series);
    const names = [...view.series.keys()].sort();
    view.charts.insertBefore(card, view.charts.children[names.indexOf(key)] ?? null);
  }
  // Sorted by ts: a backlog arrives after newer points.
  let at = series.ts.length;
  while (at > 0 && series.ts[at - 1] > ts) at--;
  if (at > 0 && series.ts[at - 1] === ts) series.values[at - 1] = value;
  else {
    series.ts.splice(at, 0, ts);
    series.values.splice(at, 0, value);
  }
  if (series.ts.length > MAX_POINTS) {
    series.ts.splice(0, series.ts.length - MAX_POINTS);
    series.values.splice(0, series.values.length - MAX_POINTS);
  }
}

function addEvent(view: DeviceView, event: TimelineEvent): void {
  view.events.push(event);
  view.events.sort((a, b) => a.ts - b.ts);
  if (view.events.length > MAX_EVENTS) view.events.splice(0, view.events.length - MAX_EVENTS);
  view.eventList.replaceChildren(
    ...view.events
      .slice()
      .reverse()
      .map((e) => el("li", { class: e.key }, el("time", {}, clock(e.ts)), e.text))
  );
}

function otaTelemetry(view: DeviceView, key: string, value: Json): void {
  if (key === "fw_progress" && typeof value === "number") view.otaProgress.value = value;
  if (key === "fw_state") {
    if (value === "DOWNLOADING" && view.otaStatus.dataset.state !== "DOWNLOADING") view.otaProgress.value = 0;
    if (value === "UPDATED" || value === "DOWNLOADED" || value === "VERIFIED") view.otaProgress.value = 100;
    view.otaStatus.dataset.state = shown(value);
  }
  view.otaProgress.dataset.value = String(view.otaProgress.value);
  const error = key === "fw_error" ? " (" + shown(value) + ")" : "";
  view.otaStatus.textContent = "state: " + (view.otaStatus.dataset.state || "none") + error;
}

/** xs in seconds and values, with a null where the readings stopped (more than 3 typical intervals apart): a gap, not a line. */
function withGaps(series: Series, from: number): [number[], (number | null)[]] {
  let first = 0;
  while (first < series.ts.length && series.ts[first] < from) first++;
  const ts = series.ts.slice(first);
  const values = series.values.slice(first);
  const steps = ts.slice(1).map((t, i) => t - ts[i]).sort((a, b) => a - b);
  const typical = steps.length ? steps[Math.floor(steps.length / 2)] : 0;
  const xs: number[] = [];
  const ys: (number | null)[] = [];
  ts.forEach((t, i) => {
    if (i > 0 && typical > 0 && t - ts[i - 1] > Math.max(3 * typical, 2000)) {
      xs.push((ts[i - 1] + t) / 2000);
      ys.push(null);
    }
    xs.push(t / 1000);
    ys.push(values[i]);
  });
  return [xs, ys];
}

function drawCharts(view: DeviceView): void {
  const to = Date.now();
  const from = to - windowMinutes * 60000;
  for (const [key, series] of view.series) {
    // Points older than the widest window are dropped.
    let old = 0;
    while (old < series.ts.length && series.ts[old] < to - 30 * 60000) old++;
    if (old > 0) {
      series.ts.splice(0, old);
      series.values.splice(0, old);
    }
    const data = withGaps(series, from);
    const gaps = data[1].filter((v) => v === null).length;
    series.card.dataset.points = String(data[0].length - gaps);
    series.card.dataset.gaps = String(gaps);
    series.latest.textContent = series.values.length ? String(series.values[series.values.length - 1]) + " at " + clock(series.ts[series.ts.length - 1]) : "";
    const width = Math.max(280, series.card.clientWidth - 16);
    if (!series.plot) {
      series.plot = new uPlot(
        {
          width,
          height: 170,
          legend: { show: false },
          scales: { x: { time: true } },
          series: [{}, { label: key, stroke: series.color, width: 1.5, points: { show: true, size: 4 } }],
          hooks: { draw: [(u: uPlot) => drawEvents(u, view)] },
        },
        data as uPlot.AlignedData,
        series.card
      );
    } else {
      if (Math.abs(series.plot.width - width) > 4) series.plot.setSize({ width, height: 170 });
      series.plot.setData(data as uPlot.AlignedData);
    }
    series.plot.setScale("x", { min: from / 1000, max: to / 1000 });
  }
}

/** sensor_error and fw_state events as vertical lines on every chart. */
function drawEvents(u: uPlot, view: DeviceView): void {
  const context = u.ctx;
  context.save();
  for (const event of view.events) {
    const x = u.valToPos(event.ts / 1000, "x", true);
    if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
    context.strokeStyle = event.key === "sensor_error" || event.key === "fw_error" ? "#c62f2f" : "#2f6fdb";
    context.setLineDash([4, 3]);
    context.beginPath();
    context.moveTo(x, u.bbox.top);
    context.lineTo(x, u.bbox.top + u.bbox.height);
    context.stroke();
  }
  context.restore();
}

function renderFacts(view: DeviceView): void {
  const { state } = view;
  view.badge.textContent = state.online ? "online" : "offline";
  view.badge.className = "badge " + (state.online ? "online" : "offline");
  const fact = (name: string, value: string) => el("span", { "data-fact": name }, name + " ", el("b", {}, value || "–"));
  view.facts.replaceChildren(
    fact("client id", state.clientId ?? ""),
    fact("runtime", shown(state.client.runtime)),
    fact("board", shown(state.client.board)),
    fact("firmware", [shown(state.client.current_fw_title), shown(state.client.current_fw_version)].join(" ").trim()),
    fact("last seen", ago(state.lastSeen))
  );
}

/** "key: why, got X; ignored; other: ..." (the device's config_error) per key. */
function problemsByKey(configError: Json | undefined): Map<string, string> {
  const problems = new Map<string, string>();
  if (typeof configError !== "string") return problems;
  for (const part of configError.split("; ")) {
    const colon = part.indexOf(": ");
    if (colon > 0) problems.set(part.slice(0, colon), part.slice(colon + 2) + "; ignored");
  }
  return problems;
}

function renderAttributes(view: DeviceView): void {
  const { state } = view;
  const row = (key: string, value: Json, ...extra: HTMLElement[]) => el("tr", { "data-key": key }, el("td", {}, key), el("td", { class: "value" }, shown(value)), ...extra);
  view.clientTable.replaceChildren(...Object.keys(state.client).sort().map((key) => row(key, state.client[key])));
  const problems = problemsByKey(state.client.config_error);
  view.sharedTable.replaceChildren(
    ...Object.keys(state.shared)
      .sort()
      .map((key) => {
        const remove = el("button", { type: "button", class: "quiet", title: "delete " + key }, "✕");
        remove.addEventListener("click", () => {
          post("/api/attr-delete", { device: state.name, key }).catch((e: Error) => alert(e.message));
        });
        return row(key, state.shared[key], el("td", { class: "problem" }, problems.get(key) ?? ""), el("td", {}, remove));
      })
  );
}

function deviceView(name: string): DeviceView | null {
  return views.get(name) ?? null;
}

function render(view: DeviceView): void {
  renderFacts(view);
  renderAttributes(view);
}

// ---- the stream ----

function onSnapshot(change: Extract<Change, { kind: "snapshot" }>): void {
  canBuild = change.canBuild;
  for (const view of views.values()) for (const series of view.series.values()) series.plot?.destroy();
  views.clear();
  otaFillers.length = 0;
  devicesRoot.replaceChildren();
  for (const state of change.devices) addDevice(state);
  if (change.devices.length === 0) devicesRoot.append(el("p", { class: "empty" }, "No device yet."));
  consoleBox.replaceChildren();
  for (const line of change.console) addConsole(line);
  logBox.textContent = "";
  for (const line of change.log) addLog(line);
}

function addDevice(state: DeviceState): DeviceView {
  devicesRoot.querySelector(".empty")?.remove();
  const view = makeView(state);
  views.set(state.name, view);
  devicesRoot.append(view.root);
  render(view);
  return view;
}

function onChange(change: Change): void {
  if (change.kind === "snapshot") return onSnapshot(change);
  if (change.kind === "console") return addConsole(change);
  if (change.kind === "log") return addLog(change);
  const view = deviceView(change.device) ?? addDevice({ name: change.device, online: false, clientId: null, lastSeen: null, client: {}, shared: {}, telemetry: [] });
  const { state } = view;
  if (change.kind === "session") {
    state.online = change.online;
    state.clientId = change.clientId;
  } else if (change.kind === "seen") state.lastSeen = change.at;
  else if (change.kind === "telemetry") {
    state.lastSeen = Date.now();
    addPoints(view, change.points);
  } else if (change.kind === "client") Object.assign(state.client, change.values);
  else if (change.kind === "shared") {
    Object.assign(state.shared, change.values);
    for (const key of change.deleted) delete state.shared[key];
  }
  render(view);
}

const consoleBox = byId("console");
const logBox = byId("log");

function addConsole(line: Line): void {
  const level = /^\[([DIWE])\]/.exec(line.line);
  consoleBox.append(el("div", { class: level ? level[1] : "" }, line.line));
  while (consoleBox.childElementCount > MAX_LINES) consoleBox.firstElementChild?.remove();
  consoleBox.scrollTop = consoleBox.scrollHeight;
}

function addLog(line: Line): void {
  const lines = (logBox.textContent + clock(line.at) + " " + line.line + "\n").split("\n");
  logBox.textContent = lines.slice(Math.max(0, lines.length - 1 - MAX_LINES)).join("\n");
}

function connect(): void {
  const link = byId("link");
  const stream = new EventSource("/api/events");
  stream.onopen = () => {
    link.textContent = "live";
    link.className = "badge online";
  };
  stream.onerror = () => {
    link.textContent = "emulator not reachable, retrying…";
    link.className = "badge offline";
  };
  stream.onmessage = (message: MessageEvent<string>) => onChange(JSON.parse(message.data) as Change);
}

const windowSelect = byId("window") as HTMLSelectElement;
windowSelect.addEventListener("change", () => {
  windowMinutes = Number(windowSelect.value);
  views.forEach((view) => drawCharts(view));
});

// Charts are redrawn once a second (the window moves with the clock), never per message; "last seen" too.
setInterval(() => {
  for (const view of views.values()) {
    renderFacts(view);
    drawCharts(view);
  }
}, 1000);
window.addEventListener("resize", () => views.forEach((view) => drawCharts(view)));
void refreshImages().then(() => otaFillers.forEach((fill) => fill()));
connect();
