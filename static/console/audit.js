// The console's audit log (#audit): every change a marketer or admin made (GET /api/audit),
// newest first, with the changed fields before → after; filters for everything the API
// filters on; older pages with the API's cursor; the filtered log as a CSV download.
//
// The filters live in the hash as a query after the section, `#audit/kind=store&actor=...`
// (URLSearchParams: since/until as unix seconds, as the API takes them), so a reload or a
// bookmark keeps them. This module reads them from location.hash itself (console.js would
// split a value holding "/" into more args). Applying filters pushes a history entry
// without redrawing the view (the keyboard focus stays in the form); Back and Forward change
// the hash, and the console draws the view again from it.
import { api, apiFile, clearErrors, saveFile, showError, token } from "../js/api.js";
import { formatTime, label, t } from "../js/i18n.js";

const KINDS = ["store", "campaign", "offer", "grant", "game", "program", "coupon", "webhook"];
const ACTIONS = [
  "create",
  "update",
  "replace",
  "delete",
  "import",
  "transition",
  "configure",
  "grant",
  "revoke",
  "void",
  "void_redemption",
  "rotate_secret",
];
const FILTERS = ["kind", "action", "actor", "object_id", "since", "until"];
const PAGE_SIZES = ["10", "25", "50", "100"];
const DEFAULT_LIMIT = "50";
const SHOWN_FIELDS = 4; // fields listed at once; the rest behind "n more fields"
const LONG_VALUE = 80; // characters of a value shown before "show all"
const TIME_STYLE = { dateStyle: "medium", timeStyle: "medium" };

/** The reader's time zone (the browser's), named wherever a time is shown. */
export function readerZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

/** Read the filters (and the page size) kept in the hash: `#audit/kind=store&limit=10`. */
export function hashFilters(hash = location.hash) {
  const found = {};
  const query = hash.replace(/^#audit\/?/, "");
  let params;
  try {
    params = new URLSearchParams(query);
  } catch {
    return found;
  }
  for (const name of [...FILTERS, "limit"]) {
    const value = (params.get(name) || "").trim();
    if (value) found[name] = value;
  }
  if (found.limit && !PAGE_SIZES.includes(found.limit)) delete found.limit;
  return found;
}

/** Unix seconds → the value of a datetime-local input, in the reader's time zone. */
function toLocalInput(seconds) {
  const date = new Date(Number(seconds) * 1000);
  if (Number.isNaN(date.getTime())) return "";
  const two = (n) => String(n).padStart(2, "0");
  return (
    `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())}` +
    `T${two(date.getHours())}:${two(date.getMinutes())}`
  );
}

export async function show(view, ctx) {
  const log = new AuditLog(view, ctx.user, hashFilters());
  log.draw();
  // Times are formatted text: written again in the new language when it changes.
  const relabel = () => log.retime();
  document.addEventListener("languagechange", relabel);
  await log.load();
  return () => {
    document.removeEventListener("languagechange", relabel);
    log.close();
  };
}

class AuditLog {
  constructor(view, user, filters) {
    this.view = view;
    this.user = user;
    this.filters = filters;
    this.zone = readerZone();
    this.mine = `${user.role}:${user.id}`;
    this.turn = 0;
    this.cursor = null;
    this.shown = 0;
  }

  close() {
    this.turn += 1; // an answer still on its way is dropped
  }

  retime() {
    for (const when of this.rows.querySelectorAll("time[data-ts]")) {
      when.textContent = formatTime(Number(when.dataset.ts), this.zone, TIME_STYLE);
    }
  }

  draw() {
    const section = document.createElement("section");
    section.className = "audit";
    section.setAttribute("aria-labelledby", "audit-title");
    section.append(
      label("h2", "audit.title", null, { id: "audit-title" }),
      label("p", "audit.intro", null, { class: "muted" }),
      this.drawForm(),
      this.drawResults(),
    );
    this.view.append(section);
  }

  drawForm() {
    const form = document.createElement("form");
    form.className = "card audit-filters";
    form.id = "audit-filters";
    form.noValidate = true;
    form.setAttribute("aria-labelledby", "audit-filters-title");
    const grid = document.createElement("div");
    grid.className = "audit-grid";
    grid.append(
      choice("kind", "audit.kind", KINDS, "audit.kind.", this.filters.kind),
      choice("action", "audit.action", ACTIONS, "audit.action.", this.filters.action),
      field("actor", "audit.actor", this.filters.actor, { autocomplete: "off", spellcheck: "false" }),
      field("object_id", "audit.object_id", this.filters.object_id, {
        autocomplete: "off",
        spellcheck: "false",
      }),
      field("since", "audit.since", toLocalInput(this.filters.since), {}, "datetime-local", {
        zone: this.zone,
      }),
      field("until", "audit.until", toLocalInput(this.filters.until), {}, "datetime-local", {
        zone: this.zone,
      }),
      sizes(this.filters.limit),
    );
    const alert = document.createElement("p");
    alert.className = "form-error";
    alert.dataset.formError = "";
    alert.setAttribute("role", "alert");
    alert.hidden = true;
    const actions = document.createElement("div");
    actions.className = "actions";
    const apply = label("button", "audit.apply", null, { type: "submit", id: "audit-apply" });
    const mine = label("button", "audit.mine", null, { type: "button", id: "audit-mine" });
    mine.addEventListener("click", () => {
      form.elements.actor.value = this.mine;
      form.requestSubmit();
    });
    const reset = label("button", "audit.clear", null, { type: "button", id: "audit-clear" });
    reset.addEventListener("click", () => {
      for (const name of FILTERS) form.elements[name].value = "";
      form.requestSubmit();
    });
    this.exportButton = label("button", "audit.export", null, {
      type: "button",
      id: "audit-export",
    });
    this.exportButton.addEventListener("click", () => this.exportCsv());
    actions.append(apply, mine, reset, this.exportButton);
    form.append(label("h3", "audit.filters", null, { id: "audit-filters-title" }), grid, alert, actions);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.apply();
    });
    this.form = form;
    return form;
  }

  drawResults() {
    const results = document.createElement("section");
    results.className = "card audit-results";
    results.setAttribute("aria-labelledby", "audit-results-title");
    this.status = document.createElement("p");
    this.status.id = "audit-status";
    this.status.setAttribute("role", "status");
    this.table = document.createElement("table");
    this.table.id = "audit-table";
    const head = document.createElement("tr");
    for (const key of ["audit.col_when", "audit.col_who", "audit.col_action", "audit.col_what", "audit.col_changes"]) {
      head.append(label("th", key, null, { scope: "col" }));
    }
    const thead = document.createElement("thead");
    thead.append(head);
    this.rows = document.createElement("tbody");
    this.table.append(label("caption", "audit.caption", { zone: this.zone }), thead, this.rows);
    this.wrap = document.createElement("div");
    this.wrap.className = "table-wrap";
    this.wrap.tabIndex = 0;
    this.wrap.setAttribute("role", "region");
    this.wrap.setAttribute("aria-labelledby", "audit-results-title");
    this.wrap.append(this.table);
    this.wrap.hidden = true;
    this.moreButton = label("button", "audit.more", null, { type: "button", id: "audit-more" });
    this.moreButton.hidden = true;
    this.moreButton.addEventListener("click", () => {
      if (!this.moreButton.hasAttribute("aria-disabled")) this.load({ more: true });
    });
    results.append(
      label("h3", "audit.results", null, { id: "audit-results-title" }),
      this.status,
      this.wrap,
      this.moreButton,
    );
    return results;
  }

  /** Read the form into filters, or null after showing what is wrong next to its field. */
  readForm() {
    clearErrors(this.form);
    const elements = this.form.elements;
    const filters = {};
    for (const name of ["kind", "action", "actor", "object_id"]) {
      const value = elements[name].value.trim();
      if (value) filters[name] = value;
    }
    for (const name of ["since", "until"]) {
      const input = elements[name];
      if (input.validity.badInput) {
        showError(this.form, { code: "audit_date_invalid", field: name });
        return null;
      }
      if (input.value) {
        const seconds = new Date(input.value).getTime() / 1000;
        if (!Number.isFinite(seconds) || seconds < 0) {
          showError(this.form, { code: "audit_date_invalid", field: name });
          return null;
        }
        filters[name] = String(seconds);
      }
    }
    if (filters.since && filters.until && Number(filters.until) <= Number(filters.since)) {
      showError(this.form, { code: "audit_range_invalid", field: "until" });
      return null;
    }
    if (elements.limit.value !== DEFAULT_LIMIT) filters.limit = elements.limit.value;
    return filters;
  }

  /** Apply the form's filters: keep them in the hash (a new history entry) and read page 1. */
  apply() {
    const filters = this.readForm();
    if (!filters) return;
    this.filters = filters;
    const query = new URLSearchParams(filters).toString();
    const hash = query ? `#audit/${query}` : "#audit";
    if (location.hash !== hash) history.pushState(null, "", hash);
    this.load();
  }

  /** The API's query for the filters: page size and, for older entries, the cursor. */
  query({ cursor = null, csv = false } = {}) {
    const params = new URLSearchParams();
    for (const name of FILTERS) if (this.filters[name]) params.set(name, this.filters[name]);
    if (!csv) params.set("limit", this.filters.limit || DEFAULT_LIMIT);
    if (cursor) params.set("cursor", cursor);
    return params.toString();
  }

  /** Read the first page (replacing the rows) or, with `more`, the next older one. */
  async load({ more = false } = {}) {
    const turn = ++this.turn;
    if (!more) clearErrors(this.form);
    this.status.replaceChildren(label("span", "audit.loading"));
    this.moreButton.setAttribute("aria-disabled", "true");
    let page;
    try {
      page = await api("GET", `/api/audit?${this.query({ cursor: more ? this.cursor : null })}`);
    } catch (error) {
      if (turn !== this.turn) return;
      this.moreButton.removeAttribute("aria-disabled");
      this.status.replaceChildren();
      if (!more) {
        // The rows of other filters would mislead next to the error.
        this.rows.replaceChildren();
        this.shown = 0;
        this.wrap.hidden = true;
        this.moreButton.hidden = true;
      }
      showError(this.form, error);
      return;
    }
    if (turn !== this.turn) return; // newer filters were applied meanwhile
    if (!more) {
      this.rows.replaceChildren();
      this.shown = 0;
    }
    const first = this.rows.rows.length;
    for (const entry of page.items) this.rows.append(this.row(entry));
    this.shown += page.items.length;
    this.cursor = page.next_cursor;
    this.moreButton.hidden = !this.cursor;
    this.moreButton.removeAttribute("aria-disabled");
    this.wrap.hidden = this.shown === 0;
    if (this.shown === 0 && !this.cursor) this.status.replaceChildren(label("span", "audit.empty"));
    else if (this.shown === 0) this.status.replaceChildren(label("span", "audit.scan_more"));
    else {
      const key = this.cursor ? "audit.count_more" : "audit.count";
      this.status.replaceChildren(label("span", key, { count: this.shown }));
    }
    // After "older entries" the keyboard goes on at the first new row's table.
    if (more && this.moreButton.hidden && this.rows.rows.length > first) this.wrap.focus();
  }

  row(entry) {
    const tr = document.createElement("tr");
    Object.assign(tr.dataset, {
      id: entry.id,
      kind: entry.kind,
      action: entry.action,
      object: entry.object_id,
    });
    const cell = (...children) => {
      const td = document.createElement("td");
      td.append(...children);
      return td;
    };
    const when = document.createElement("time");
    when.dateTime = new Date(entry.ts * 1000).toISOString();
    when.dataset.ts = String(entry.ts);
    when.textContent = formatTime(entry.ts, this.zone, TIME_STYLE);
    const who =
      entry.actor === this.mine
        ? label("span", "audit.you", { actor: entry.actor })
        : text("span", entry.actor);
    const what = document.createElement("span");
    what.append(known("span", "audit.kind.", KINDS, entry.kind));
    if (entry.object_id) what.append(" ", text("code", entry.object_id));
    const changes = cell(diff(entry));
    changes.className = "audit-changes";
    tr.append(
      cell(when),
      cell(who),
      cell(known("span", "audit.action.", ACTIONS, entry.action)),
      cell(what),
      changes,
    );
    return tr;
  }

  /** Download the log as the applied filters select it (the rows shown, and older ones) as
   *  CSV (GET /api/audit.csv with the tab's token in the header, never in a URL): the answer becomes a Blob behind an object URL and a link with
   *  `download` is clicked. */
  async exportCsv() {
    if (this.exportButton.hasAttribute("aria-disabled")) return; // one download at a time
    clearErrors(this.form);
    this.exportButton.setAttribute("aria-disabled", "true");
    try {
      const response = await apiFile(`/api/audit.csv?${this.query({ csv: true })}`, "text/csv");
      saveFile(await response.blob(), "footfall-audit.csv");
      const capped = response.headers.get("X-Next-Cursor");
      this.status.replaceChildren(label("span", capped ? "audit.export_capped" : "audit.exported"));
    } catch (error) {
      showError(this.form, error);
    } finally {
      this.exportButton.removeAttribute("aria-disabled");
    }
  }
}

/** The changed fields of an entry, each `field: before → after` (inside objects changed on
 *  both sides, the sub-fields that differ: `fence.radius_m: 80 → 50`); a creation shows only
 *  the new values, a deletion only the old ones; long values and lists fold away. */
function diff(entry) {
  const before = entry.before || {};
  const after = entry.after || {};
  const changes = changedFields(before, after);
  if (!changes.length) return label("span", "audit.no_fields", null, { class: "muted" });
  const created = !Object.keys(before).length;
  const deleted = !Object.keys(after).length;
  const item = (change) => {
    const li = document.createElement("li");
    li.dataset.field = change.name;
    li.append(text("code", change.name, { class: "audit-field" }), ": ");
    if (!created) li.append(value(change.hasBefore, change.before, "audit-before"));
    if (!created && !deleted) {
      const arrow = document.createElement("span");
      arrow.className = "audit-arrow";
      arrow.append(text("span", " → ", { "aria-hidden": "true" }));
      arrow.append(label("span", "audit.to", null, { class: "visually-hidden" }));
      li.append(arrow);
    }
    if (!deleted) li.append(value(change.hasAfter, change.after, "audit-after"));
    return li;
  };
  const list = document.createElement("ul");
  list.className = "audit-diff";
  for (const change of changes.slice(0, SHOWN_FIELDS)) list.append(item(change));
  if (changes.length <= SHOWN_FIELDS) return list;
  const rest = document.createElement("details");
  rest.className = "audit-rest";
  const restList = document.createElement("ul");
  restList.className = "audit-diff";
  for (const change of changes.slice(SHOWN_FIELDS)) restList.append(item(change));
  const more = { count: changes.length - SHOWN_FIELDS };
  rest.append(label("summary", "audit.more_fields", more), restList);
  const wrap = document.createElement("div");
  wrap.append(list, rest);
  return wrap;
}

/** List what differs between two records: [{name, hasBefore, before, hasAfter, after}],
 *  going into objects that both sides hold (dotted names), by name. */
export function changedFields(before, after) {
  const found = [];
  const plain = (v) => v !== null && typeof v === "object" && !Array.isArray(v) && v.truncated !== true;
  const walk = (name, hasBefore, old, hasAfter, now) => {
    if (hasBefore && hasAfter && plain(old) && plain(now)) {
      const count = found.length;
      for (const key of [...new Set([...Object.keys(old), ...Object.keys(now)])].sort()) {
        if (JSON.stringify(old[key]) === JSON.stringify(now[key])) continue;
        walk(`${name}.${key}`, key in old, old[key], key in now, now[key]);
      }
      if (found.length > count) return;
    }
    found.push({ name, hasBefore, before: old, hasAfter, after: now });
  };
  for (const name of [...new Set([...Object.keys(before), ...Object.keys(after)])].sort()) {
    walk(name, name in before, before[name], name in after, after[name]);
  }
  return found;
}

/** One side of a change: "none" when the field is absent, the size of a value too large to
 *  keep, else the value (text as it is, anything else as JSON), long ones folded. */
function value(present, v, className) {
  if (!present) return label("span", "audit.none", null, { class: `${className} muted` });
  if (v && typeof v === "object" && v.truncated === true && "chars" in v) {
    return label("span", "audit.truncated", { chars: v.chars }, { class: className });
  }
  const shown = typeof v === "string" ? v : JSON.stringify(v);
  if (shown.length <= LONG_VALUE) return text("span", shown, { class: className });
  const fold = document.createElement("details");
  fold.className = `${className} audit-long`;
  const summary = document.createElement("summary");
  summary.append(text("span", `${shown.slice(0, LONG_VALUE - 20)}…`), " ", label("span", "audit.show_all"));
  const full = text("pre", typeof v === "string" ? v : JSON.stringify(v, null, 2));
  fold.append(summary, full);
  return fold;
}

/** A catalogue text for a known value (`audit.kind.store`), else the value itself. */
function known(tag, prefix, values, name) {
  return values.includes(name) ? label(tag, `${prefix}${name}`) : text(tag, name);
}

function text(tag, content, attributes = {}) {
  const el = document.createElement(tag);
  el.textContent = content;
  for (const [name, v] of Object.entries(attributes)) el.setAttribute(name, v);
  return el;
}

function field(name, key, current = "", attributes = {}, type = "text", params = null) {
  const wrap = document.createElement("div");
  wrap.className = "field";
  const input = document.createElement("input");
  Object.assign(input, { id: `audit-${name}`, name, type, value: current || "" });
  for (const [attribute, v] of Object.entries(attributes)) input.setAttribute(attribute, v);
  wrap.append(label("label", key, params, { for: input.id }), input);
  return wrap;
}

function choice(name, key, values, prefix, current = "") {
  const wrap = document.createElement("div");
  wrap.className = "field";
  const select = document.createElement("select");
  select.id = `audit-${name}`;
  select.name = name;
  select.append(label("option", "audit.any", null, { value: "" }));
  const all = current && !values.includes(current) ? [...values, current] : values;
  for (const v of all) {
    const option = values.includes(v) ? label("option", `${prefix}${v}`) : text("option", v);
    option.value = v;
    select.append(option);
  }
  select.value = current || "";
  wrap.append(label("label", key, null, { for: select.id }), select);
  return wrap;
}

function sizes(current = DEFAULT_LIMIT) {
  const wrap = document.createElement("div");
  wrap.className = "field";
  const select = document.createElement("select");
  select.id = "audit-limit";
  select.name = "limit";
  for (const size of PAGE_SIZES) select.append(new Option(size, size));
  select.value = PAGE_SIZES.includes(current) ? current : DEFAULT_LIMIT;
  wrap.append(label("label", "audit.limit", null, { for: select.id }), select);
  return wrap;
}
