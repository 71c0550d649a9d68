// The console's webhooks (#webhooks, #webhooks/<endpoint id>): the endpoints registered for
// signed outgoing events (GET/POST/PATCH/DELETE /api/webhooks/endpoints…), a form to register
// one (its signing secret is shown once, in a marked box with a copy button), and per endpoint
// its settings, disable/enable, secret rotation with an overlap (the new secret shown once),
// a test ping, deletion (confirmed), the delivery log (every attempt, filtered by event type
// and result, older pages by the API's cursor, "Retry now") and the failed messages.
//
// Deliveries happen in the server's background, so the endpoint view reads its record, the
// newest page of the log and the failed messages again every few seconds while the tab is
// visible (every half second for a while after a ping, a retry or an enable, when something
// is about to change). New attempts are put above the rows shown, so paging and the keyboard
// focus stay where they are.
import { api, clearErrors, errorText, formAlert, showError } from "../js/api.js";
import { askToConfirm } from "../js/confirm.js";
import { formatTime, has, label, t } from "../js/i18n.js";
import { readerZone } from "./audit.js";

const RESULTS = ["succeeded", "retrying", "failed"];
const PING = "webhook.ping";
const ALL = "*";
// The overlap choices of a rotation (seconds the previous secret keeps signing).
const OVERLAPS = [
  [0, "webhooks.overlap.none"],
  [3600, "webhooks.overlap.hour"],
  [86_400, "webhooks.overlap.day"],
  [604_800, "webhooks.overlap.week"],
];
const DEFAULT_OVERLAP = 86_400;
const TIME_STYLE = { dateStyle: "medium", timeStyle: "medium" };
const PAGE = 50;
const CAMPAIGN_PAGE = 200;
const POLL_MS = 3000; // the endpoint view reads the log again this often
const FAST_MS = 500; // ... and this often for FAST_FOR_MS after a ping, a retry or an enable
const FAST_FOR_MS = 20_000;

export async function show(view, ctx) {
  const [first] = ctx.args;
  if (!first) return showList(view, ctx);
  return showEndpoint(view, ctx, first);
}

// --- shared pieces ---------------------------------------------------------------------------

/** The event types an endpoint may ask for, and the campaigns (id -> name) for the scope. */
async function loadChoices() {
  const [types, campaigns] = await Promise.all([
    api("GET", "/api/webhooks/event-types"),
    api("GET", `/api/campaigns?limit=${CAMPAIGN_PAGE}`).catch(() => ({ items: [] })),
  ]);
  return { types: types.items, campaigns: new Map(campaigns.items.map((c) => [c.id, c.name])) };
}

function text(tag, content, attributes = {}) {
  const el = document.createElement(tag);
  el.textContent = content;
  for (const [name, value] of Object.entries(attributes)) el.setAttribute(name, value);
  return el;
}

function cell(...children) {
  const td = document.createElement("td");
  td.append(...children);
  return td;
}

/** A <time> in the reader's zone; `retime` writes it again after a language change. */
function timeOf(seconds, zone) {
  const el = document.createElement("time");
  el.dateTime = new Date(seconds * 1000).toISOString();
  el.dataset.ts = String(seconds);
  el.textContent = formatTime(seconds, zone, TIME_STYLE);
  return el;
}

function retime(root, zone) {
  for (const el of root.querySelectorAll("time[data-ts]")) {
    el.textContent = formatTime(Number(el.dataset.ts), zone, TIME_STYLE);
  }
}

/** An event type: its name (as the receiver sees it) and, when the catalogue has it, what it
 *  means. */
function eventType(type) {
  const wrap = document.createElement("span");
  wrap.className = "event-type";
  wrap.append(text("code", type));
  if (has(`webhooks.event.${type}`)) {
    wrap.append(" ", label("span", `webhooks.event.${type}`, null, { class: "muted" }));
  }
  return wrap;
}

/** The event types of an endpoint: "every event type" or the list. */
function typeList(types) {
  if (types.includes(ALL)) return label("span", "webhooks.types_all");
  const list = document.createElement("ul");
  list.className = "webhook-types";
  for (const type of types) {
    const item = document.createElement("li");
    item.append(text("code", type));
    list.append(item);
  }
  return list;
}

function scopeOf(endpoint, campaigns) {
  if (!endpoint.campaign_id) return label("span", "webhooks.scope_all");
  const name = campaigns.get(endpoint.campaign_id);
  return name
    ? label("span", "webhooks.scope_campaign", { name, id: endpoint.campaign_id })
    : label("span", "webhooks.scope_campaign_id", { id: endpoint.campaign_id });
}

function statusBadge(status) {
  const known = ["active", "disabled"].includes(status);
  const badge = known ? label("span", `webhooks.status.${status}`) : text("span", status);
  badge.className = `status-badge webhook-status-${status}`;
  badge.dataset.status = status;
  return badge;
}

function resultBadge(result) {
  const badge = RESULTS.includes(result) ? label("span", `webhooks.result.${result}`) : text("span", result);
  badge.className = `status-badge webhook-result-${result}`;
  return badge;
}

/** Why an endpoint is disabled, in the reader's language (the server's own words too). */
function disabledWhy(endpoint, zone) {
  const wrap = document.createElement("div");
  wrap.className = "webhook-why";
  const code = endpoint.disabled_code;
  const why = ["gone", "failing", "manual"].includes(code)
    ? label("p", `webhooks.disabled.${code}`, null, { class: "webhook-reason" })
    : text("p", endpoint.disabled_reason || "", { class: "webhook-reason" });
  wrap.append(why);
  if (endpoint.disabled_at) {
    const since = label("p", "webhooks.disabled_since", null, { class: "webhook-since" });
    since.append(" ", timeOf(endpoint.disabled_at, zone));
    wrap.append(since);
  }
  // The server's own words add something only where the catalogue's do not say it all (the
  // day the failures began, a reason this page does not know).
  if (endpoint.disabled_reason && !["gone", "manual"].includes(code)) {
    const note = label("p", "webhooks.server_says", null, { class: "muted" });
    note.append(" ", text("q", endpoint.disabled_reason));
    wrap.append(note);
  }
  return wrap;
}

function field(name, key, { id, type = "text", value = "", tag = "input", hint = null, attrs = {} }) {
  const wrap = document.createElement("div");
  wrap.className = "field";
  const input = document.createElement(tag);
  input.id = id;
  input.name = name;
  if (tag === "input") input.type = type;
  for (const [attribute, v] of Object.entries(attrs)) input.setAttribute(attribute, v);
  if (tag !== "select") input.value = value;
  wrap.append(label("label", key, null, { for: id }), input);
  if (hint) {
    const note = label("p", hint, null, { class: "hint", id: `${id}-hint` });
    input.setAttribute("aria-describedby", note.id);
    wrap.append(note);
  }
  return wrap;
}

/** The event-type checkboxes: "every type" (also ones added later) or a choice. */
function typeChoice(prefix, types, chosen = []) {
  const set = document.createElement("fieldset");
  set.className = "webhook-type-choice";
  set.id = `${prefix}-types`;
  set.append(label("legend", "webhooks.field_types"));
  const all = document.createElement("input");
  Object.assign(all, { type: "checkbox", id: `${prefix}-type-all`, name: "event_type", value: ALL });
  all.checked = chosen.includes(ALL);
  const allRow = document.createElement("div");
  allRow.className = "check";
  allRow.append(all, label("label", "webhooks.types_all_choice", null, { for: all.id }));
  const list = document.createElement("div");
  list.className = "webhook-type-list";
  const boxes = [];
  types.forEach((type, n) => {
    const row = document.createElement("div");
    row.className = "check";
    const box = document.createElement("input");
    Object.assign(box, { type: "checkbox", id: `${prefix}-type-${n}`, name: "event_type", value: type });
    box.checked = !all.checked && chosen.includes(type);
    const name = document.createElement("label");
    name.htmlFor = box.id;
    name.append(eventType(type));
    row.append(box, name);
    list.append(row);
    boxes.push(box);
  });
  const sync = () => {
    for (const box of boxes) box.disabled = all.checked;
  };
  all.addEventListener("change", sync);
  sync();
  set.append(allRow, list);
  return {
    element: set,
    value: () => (all.checked ? [ALL] : boxes.filter((b) => b.checked).map((b) => b.value)),
    focus: () => all.focus(),
  };
}

/** A signing secret shown this once: marked, with a copy button and the warning. */
function secretBox(idPrefix, titleKey, secret, extra = []) {
  const box = document.createElement("section");
  box.className = "card secret-box";
  box.id = `${idPrefix}-secret`;
  box.setAttribute("aria-labelledby", `${idPrefix}-secret-title`);
  const title = label("h3", titleKey, null, { id: `${idPrefix}-secret-title`, tabindex: "-1" });
  const warning = label("p", "webhooks.secret_once", null, { class: "secret-warning" });
  const wrap = document.createElement("div");
  wrap.className = "field";
  const input = document.createElement("input");
  Object.assign(input, { id: `${idPrefix}-secret-value`, type: "text", value: secret, readOnly: true });
  input.setAttribute("autocomplete", "off");
  input.setAttribute("spellcheck", "false");
  input.className = "secret-value";
  wrap.append(label("label", "webhooks.secret_label", null, { for: input.id }), input);
  const note = document.createElement("p");
  note.setAttribute("role", "status");
  note.className = "hint";
  const copy = label("button", "webhooks.secret_copy", null, { type: "button", id: `${idPrefix}-secret-copy` });
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(secret);
      note.replaceChildren(label("span", "webhooks.secret_copied"));
    } catch {
      // No clipboard here (an insecure page, a refused permission): select it for Ctrl+C.
      input.focus();
      input.select();
      note.replaceChildren(label("span", "webhooks.secret_copy_yourself"));
    }
  });
  const done = label("button", "webhooks.secret_done", null, { type: "button", id: `${idPrefix}-secret-done` });
  const actions = document.createElement("div");
  actions.className = "actions";
  actions.append(copy, done);
  box.append(title, warning, wrap, ...extra, actions, note);
  return { box, title, done };
}

// --- the list --------------------------------------------------------------------------------

async function showList(view) {
  const zone = readerZone();
  const section = document.createElement("section");
  section.className = "card webhooks";
  section.setAttribute("aria-labelledby", "webhooks-title");
  const status = document.createElement("p");
  status.id = "webhooks-status";
  status.setAttribute("role", "status");
  const alert = formAlert();
  const table = document.createElement("table");
  table.id = "webhook-list";
  const head = document.createElement("tr");
  for (const key of [
    "webhooks.col_url",
    "webhooks.col_description",
    "webhooks.col_types",
    "webhooks.col_scope",
    "webhooks.col_status",
    "webhooks.col_actions",
  ]) {
    head.append(label("th", key, null, { scope: "col" }));
  }
  const thead = document.createElement("thead");
  thead.append(head);
  const rows = document.createElement("tbody");
  table.append(label("caption", "webhooks.list_caption", { zone }), thead, rows);
  const wrap = document.createElement("div");
  wrap.className = "table-wrap";
  wrap.tabIndex = 0;
  wrap.setAttribute("role", "region");
  wrap.setAttribute("aria-labelledby", "webhooks-title");
  wrap.append(table);
  wrap.hidden = true;
  status.append(label("span", "webhooks.loading"));
  section.append(
    label("h2", "webhooks.title", null, { id: "webhooks-title" }),
    label("p", "webhooks.intro", null, { class: "muted" }),
    alert,
    status,
    wrap,
  );
  const secretSlot = document.createElement("div");
  view.append(secretSlot, section);

  let choices;
  try {
    choices = await loadChoices();
  } catch (error) {
    alert.textContent = errorText(error);
    alert.hidden = false;
    return;
  }

  const load = async () => {
    let page;
    try {
      page = await api("GET", "/api/webhooks/endpoints");
    } catch (error) {
      alert.textContent = errorText(error);
      alert.hidden = false;
      return;
    }
    alert.hidden = true;
    rows.replaceChildren(...page.items.map((endpoint) => listRow(endpoint)));
    wrap.hidden = !page.items.length;
    status.replaceChildren(
      page.items.length
        ? label("span", "webhooks.count", { count: page.items.length })
        : label("span", "webhooks.none_yet"),
    );
  };

  const listRow = (endpoint) => {
    const row = document.createElement("tr");
    row.dataset.endpointId = endpoint.id;
    row.dataset.status = endpoint.status;
    const link = text("a", endpoint.url, { href: `#webhooks/${encodeURIComponent(endpoint.id)}`, class: "webhook-url" });
    const description = endpoint.description
      ? text("span", endpoint.description)
      : label("span", "webhooks.no_description", null, { class: "muted" });
    const state = cell(statusBadge(endpoint.status));
    const actions = document.createElement("div");
    actions.className = "actions";
    if (endpoint.status === "disabled") {
      row.classList.add("is-disabled");
      state.append(disabledWhy(endpoint, zone));
      const enable = label("button", "webhooks.enable", null, { type: "button", class: "enable" });
      enable.append(text("span", ` ${endpoint.url}`, { class: "visually-hidden" }));
      enable.addEventListener("click", async () => {
        try {
          await api("PATCH", `/api/webhooks/endpoints/${encodeURIComponent(endpoint.id)}`, { status: "active" });
        } catch (error) {
          alert.textContent = errorText(error);
          alert.hidden = false;
          return;
        }
        await load();
        status.replaceChildren(label("span", "webhooks.enabled_one", { url: endpoint.url }));
        rows.querySelector(`tr[data-endpoint-id="${CSS.escape(endpoint.id)}"] a`)?.focus();
      });
      actions.append(enable);
    }
    row.append(
      cell(link),
      cell(description),
      cell(typeList(endpoint.event_types)),
      cell(scopeOf(endpoint, choices.campaigns)),
      state,
      cell(actions),
    );
    return row;
  };

  const form = createForm(choices, async (created) => {
    const open = label("a", "webhooks.open_endpoint", null, {
      href: `#webhooks/${encodeURIComponent(created.endpoint.id)}`,
      id: "webhook-created-open",
    });
    const { box, title, done } = secretBox("webhook-created", "webhooks.created_title", created.secret, [
      label("p", "webhooks.created_for", { url: created.endpoint.url }),
      open,
    ]);
    done.addEventListener("click", () => {
      secretSlot.replaceChildren();
      section.querySelector("h2").setAttribute("tabindex", "-1");
      section.querySelector("h2").focus();
    });
    secretSlot.replaceChildren(box);
    title.focus();
    await load();
  });
  view.append(form);
  await load();

  const relabel = () => {
    retime(view, zone);
    load();
  };
  document.addEventListener("languagechange", relabel);
  return () => document.removeEventListener("languagechange", relabel);
}

/** The form that registers an endpoint; `created({endpoint, secret})` runs after it did. */
function createForm(choices, created) {
  const form = document.createElement("form");
  form.className = "card webhook-form";
  form.id = "webhook-create";
  form.noValidate = true;
  form.setAttribute("aria-labelledby", "webhook-create-title");
  const types = typeChoice("webhook-create", choices.types);
  const campaign = field("campaign_id", "webhooks.field_campaign", {
    id: "webhook-create-campaign",
    tag: "select",
    hint: "webhooks.field_campaign_hint",
  });
  const select = campaign.querySelector("select");
  select.append(label("option", "webhooks.scope_all", null, { value: "" }));
  for (const [id, name] of choices.campaigns) select.append(new Option(`${name} (${id})`, id));
  const alert = formAlert();
  const submit = label("button", "webhooks.create", null, { type: "submit", id: "webhook-create-submit" });
  form.append(
    label("h2", "webhooks.create_title", null, { id: "webhook-create-title" }),
    label("p", "webhooks.create_intro", null, { class: "hint" }),
    field("url", "webhooks.field_url", {
      id: "webhook-create-url",
      type: "url",
      hint: "webhooks.field_url_hint",
      attrs: { autocomplete: "off", spellcheck: "false", inputmode: "url" },
    }),
    field("description", "webhooks.field_description", { id: "webhook-create-description", attrs: { maxlength: "500" } }),
    types.element,
    campaign,
    alert,
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const data = new FormData(form);
    const chosen = types.value();
    if (!String(data.get("url") || "").trim()) {
      showError(form, { code: "webhook_url_missing", field: "url" });
      return;
    }
    if (!chosen.length) {
      showError(form, { code: "webhook_types_missing", field: null });
      types.focus();
      return;
    }
    const body = {
      url: String(data.get("url")).trim(),
      description: String(data.get("description") || "").trim(),
      event_types: chosen,
    };
    if (data.get("campaign_id")) body.campaign_id = String(data.get("campaign_id"));
    submit.disabled = true;
    let answer;
    try {
      answer = await api("POST", "/api/webhooks/endpoints", body);
    } catch (error) {
      showError(form, error);
      return;
    } finally {
      submit.disabled = false;
    }
    form.reset();
    for (const box of form.querySelectorAll("input[type=checkbox]")) box.disabled = false;
    await created(answer);
  });
  return form;
}

// --- one endpoint ----------------------------------------------------------------------------

async function showEndpoint(view, ctx, id) {
  const path = `/api/webhooks/endpoints/${encodeURIComponent(id)}`;
  let choices;
  let endpoint;
  try {
    [choices, endpoint] = await Promise.all([loadChoices(), api("GET", path)]);
  } catch (error) {
    const alert = formAlert();
    alert.textContent = errorText(error);
    alert.hidden = false;
    view.append(
      label("h2", "webhooks.title"),
      alert,
      label("a", "webhooks.back", null, { href: "#webhooks", class: "back-link" }),
    );
    return;
  }
  const page = new EndpointPage(view, ctx, path, endpoint, choices);
  page.draw();
  await page.loadLog();
  await page.loadFailed();
  page.poll();
  return () => page.close();
}

class EndpointPage {
  constructor(view, ctx, path, endpoint, choices) {
    this.view = view;
    this.ctx = ctx;
    this.path = path;
    this.endpoint = endpoint;
    this.seen = JSON.stringify(endpoint);
    this.choices = choices;
    this.zone = readerZone();
    this.filters = {};
    this.cursor = null;
    this.turn = 0;
    this.closed = false;
    this.timer = null;
    this.fastUntil = 0;
    this.failedSeen = "";
    this.onLanguage = () => {
      retime(this.view, this.zone);
      this.drawSummary();
    };
    this.onVisible = () => {
      if (document.visibilityState === "visible") this.schedule(0);
    };
    document.addEventListener("languagechange", this.onLanguage);
    document.addEventListener("visibilitychange", this.onVisible);
  }

  close() {
    this.closed = true;
    this.turn += 1;
    clearTimeout(this.timer);
    document.removeEventListener("languagechange", this.onLanguage);
    document.removeEventListener("visibilitychange", this.onVisible);
  }

  draw() {
    const back = label("a", "webhooks.back", null, { href: "#webhooks", class: "back-link" });
    this.heading = document.createElement("h2");
    this.heading.id = "webhook-title";
    this.heading.tabIndex = -1;
    this.status = document.createElement("p");
    this.status.id = "webhook-status";
    this.status.setAttribute("role", "status");
    this.alert = formAlert();
    this.alert.id = "webhook-alert";

    // The reason it is disabled, in a box of its own above everything else.
    this.banner = document.createElement("section");
    this.banner.className = "card webhook-disabled";
    this.banner.id = "webhook-disabled";
    this.banner.setAttribute("aria-labelledby", "webhook-disabled-title");
    this.bannerBody = document.createElement("div");
    this.bannerEnable = label("button", "webhooks.enable", null, { type: "button", id: "webhook-banner-enable" });
    this.bannerEnable.addEventListener("click", () => this.setStatus("active", this.bannerEnable));
    this.banner.append(
      label("h3", "webhooks.disabled_title", null, { id: "webhook-disabled-title" }),
      this.bannerBody,
      this.bannerEnable,
    );

    const summary = document.createElement("section");
    summary.className = "card";
    summary.setAttribute("aria-labelledby", "webhook-settings-title");
    this.facts = document.createElement("dl");
    this.facts.className = "facts";
    this.facts.id = "webhook-facts";
    const actions = document.createElement("div");
    actions.className = "actions";
    actions.id = "webhook-actions";
    const button = (key, id, handler, className = "") => {
      const b = label("button", key, null, { type: "button", id });
      if (className) b.className = className;
      b.addEventListener("click", () => handler(b));
      actions.append(b);
      return b;
    };
    this.pingButton = button("webhooks.ping", "webhook-ping", (b) => this.ping(b));
    this.editButton = button("webhooks.edit", "webhook-edit", () => this.toggleEdit(true));
    this.rotateButton = button("webhooks.rotate", "webhook-rotate", () => this.toggleRotate(true));
    this.disableButton = button("webhooks.disable", "webhook-disable", (b) => this.setStatus("disabled", b));
    this.enableButton = button("webhooks.enable", "webhook-enable", (b) => this.setStatus("active", b));
    button("webhooks.delete", "webhook-delete", (b) => this.confirmDelete(b), "danger");
    this.editForm = this.drawEdit();
    this.rotateForm = this.drawRotate();
    this.secretSlot = document.createElement("div");
    summary.append(
      label("h3", "webhooks.settings", null, { id: "webhook-settings-title" }),
      this.facts,
      actions,
      this.editForm,
      this.rotateForm,
      this.secretSlot,
    );

    this.view.append(back, this.heading, this.status, this.alert, this.banner, summary, this.drawLog(), this.drawFailed());
    this.drawSummary();
  }

  /** The heading, the disabled box, the facts and which of disable/enable is offered. */
  drawSummary() {
    const ep = this.endpoint;
    this.heading.replaceChildren(label("span", "webhooks.endpoint_title", { url: ep.url }));
    const disabled = ep.status === "disabled";
    this.banner.hidden = !disabled;
    this.bannerBody.replaceChildren(disabled ? disabledWhy(ep, this.zone) : "");
    this.disableButton.hidden = disabled;
    this.enableButton.hidden = !disabled;
    this.facts.replaceChildren();
    const fact = (key, ...value) => {
      const dd = document.createElement("dd");
      dd.append(...value);
      this.facts.append(label("dt", key), dd);
      return dd;
    };
    fact("webhooks.col_url", text("code", ep.url)).id = "webhook-url";
    fact(
      "webhooks.col_description",
      ep.description ? text("span", ep.description) : label("span", "webhooks.no_description", null, { class: "muted" }),
    );
    fact("webhooks.col_types", typeList(ep.event_types)).id = "webhook-types";
    fact("webhooks.col_scope", scopeOf(ep, this.choices.campaigns));
    fact("webhooks.col_status", statusBadge(ep.status)).id = "webhook-state";
    fact("webhooks.created", timeOf(ep.created_at, this.zone), " ", label("span", "webhooks.created_by", { who: ep.created_by }));
    fact("webhooks.secret_created", timeOf(ep.secret_created_at, this.zone));
    if (ep.previous_secret_expires_at) {
      fact("webhooks.previous_secret", timeOf(ep.previous_secret_expires_at, this.zone)).id = "webhook-previous-secret";
    }
  }

  changed(endpoint) {
    this.endpoint = endpoint;
    this.seen = JSON.stringify(endpoint);
    this.drawSummary();
  }

  say(key, params = null) {
    this.status.replaceChildren(label("span", key, params));
  }

  fail(error) {
    this.alert.textContent = errorText(error);
    this.alert.hidden = false;
  }

  /** Read often for a while: something is about to happen in the background. */
  hurry() {
    this.fastUntil = Date.now() + FAST_FOR_MS;
    this.schedule(FAST_MS);
  }

  // -- actions ----------------------------------------------------------------------------------

  async ping(button) {
    this.alert.hidden = true;
    button.disabled = true;
    try {
      const answer = await api("POST", `${this.path}/ping`);
      this.say("webhooks.ping_queued", { msg: answer.msg_id });
    } catch (error) {
      this.fail(error);
    } finally {
      button.disabled = false;
    }
    this.hurry();
  }

  async setStatus(status, button) {
    this.alert.hidden = true;
    let endpoint;
    try {
      endpoint = await api("PATCH", this.path, { status });
    } catch (error) {
      this.fail(error);
      return;
    }
    this.changed(endpoint);
    this.say(status === "active" ? "webhooks.enabled" : "webhooks.disabled_now");
    // The button pressed is hidden now: the keyboard goes on at the one that undoes it.
    if (button) (status === "active" ? this.disableButton : this.enableButton).focus();
    this.hurry();
  }

  confirmDelete(button) {
    askToConfirm({
      opener: button,
      titleKey: "webhooks.delete_title",
      titleParams: { url: this.endpoint.url },
      textKey: "webhooks.delete_text",
      yesKey: "webhooks.delete_confirm",
      noKey: "webhooks.delete_cancel",
      onYes: async () => {
        try {
          await api("DELETE", this.path);
        } catch (error) {
          this.fail(error);
          button.focus();
          return;
        }
        this.ctx.navigate("webhooks");
      },
    });
  }

  drawEdit() {
    const ep = this.endpoint;
    const form = document.createElement("form");
    form.className = "webhook-form";
    form.id = "webhook-edit-form";
    form.noValidate = true;
    form.hidden = true;
    form.setAttribute("aria-labelledby", "webhook-edit-title");
    const title = label("h4", "webhooks.edit_title", null, { id: "webhook-edit-title", tabindex: "-1" });
    const alert = formAlert();
    const save = label("button", "webhooks.save", null, { type: "submit", id: "webhook-edit-save" });
    const cancel = label("button", "webhooks.cancel", null, { type: "button", id: "webhook-edit-cancel" });
    cancel.addEventListener("click", () => this.toggleEdit(false));
    const actions = document.createElement("div");
    actions.className = "actions";
    actions.append(save, cancel);
    this.editFields = () => {
      const e = this.endpoint;
      this.editTypes = typeChoice("webhook-edit", this.choices.types, e.event_types);
      form.replaceChildren(
        title,
        field("url", "webhooks.field_url", {
          id: "webhook-edit-url",
          type: "url",
          value: e.url,
          attrs: { autocomplete: "off", spellcheck: "false", inputmode: "url" },
        }),
        field("description", "webhooks.field_description", {
          id: "webhook-edit-description",
          value: e.description,
          attrs: { maxlength: "500" },
        }),
        this.editTypes.element,
        alert,
        actions,
      );
    };
    this.editFields(ep);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(form);
      const data = new FormData(form);
      const chosen = this.editTypes.value();
      if (!String(data.get("url") || "").trim()) {
        showError(form, { code: "webhook_url_missing", field: "url" });
        return;
      }
      if (!chosen.length) {
        showError(form, { code: "webhook_types_missing", field: null });
        this.editTypes.focus();
        return;
      }
      let endpoint;
      try {
        endpoint = await api("PATCH", this.path, {
          url: String(data.get("url")).trim(),
          description: String(data.get("description") || "").trim(),
          event_types: chosen,
        });
      } catch (error) {
        showError(form, error);
        return;
      }
      this.changed(endpoint);
      this.toggleEdit(false);
      this.say("webhooks.saved");
    });
    return form;
  }

  toggleEdit(open) {
    if (open) {
      this.toggleRotate(false, false);
      this.editFields();
      this.editForm.hidden = false;
      this.editForm.querySelector("input[name=url]").focus();
    } else {
      this.editForm.hidden = true;
      this.editButton.focus();
    }
  }

  drawRotate() {
    const form = document.createElement("form");
    form.className = "webhook-form";
    form.id = "webhook-rotate-form";
    form.noValidate = true;
    form.hidden = true;
    form.setAttribute("aria-labelledby", "webhook-rotate-title");
    const overlap = field("overlap_s", "webhooks.overlap", {
      id: "webhook-rotate-overlap",
      tag: "select",
      hint: "webhooks.overlap_hint",
    });
    const select = overlap.querySelector("select");
    for (const [seconds, key] of OVERLAPS) {
      select.append(label("option", key, null, { value: String(seconds) }));
    }
    select.value = String(DEFAULT_OVERLAP);
    const alert = formAlert();
    const go = label("button", "webhooks.rotate_confirm", null, { type: "submit", id: "webhook-rotate-go" });
    const cancel = label("button", "webhooks.cancel", null, { type: "button", id: "webhook-rotate-cancel" });
    cancel.addEventListener("click", () => this.toggleRotate(false));
    const actions = document.createElement("div");
    actions.className = "actions";
    actions.append(go, cancel);
    form.append(
      label("h4", "webhooks.rotate_title", null, { id: "webhook-rotate-title" }),
      label("p", "webhooks.rotate_intro", null, { class: "hint" }),
      overlap,
      alert,
      actions,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(form);
      let answer;
      try {
        answer = await api("POST", `${this.path}/rotate-secret`, { overlap_s: Number(select.value) });
      } catch (error) {
        showError(form, error);
        return;
      }
      this.changed(answer.endpoint);
      form.hidden = true;
      const until = answer.endpoint.previous_secret_expires_at;
      const overlapNote = until
        ? label("p", "webhooks.rotated_overlap", null, { id: "webhook-rotated-note" })
        : label("p", "webhooks.rotated_no_overlap", null, { id: "webhook-rotated-note" });
      if (until) overlapNote.append(" ", timeOf(until, this.zone));
      const { box, title, done } = secretBox("webhook-rotated", "webhooks.rotated_title", answer.secret, [overlapNote]);
      done.addEventListener("click", () => {
        this.secretSlot.replaceChildren();
        this.rotateButton.focus();
      });
      this.secretSlot.replaceChildren(box);
      title.focus();
    });
    return form;
  }

  toggleRotate(open, focus = true) {
    if (open) {
      this.editForm.hidden = true;
      this.secretSlot.replaceChildren();
      this.rotateForm.hidden = false;
      this.rotateForm.querySelector("select").focus();
    } else {
      this.rotateForm.hidden = true;
      if (focus) this.rotateButton.focus();
    }
  }

  // -- the delivery log -------------------------------------------------------------------------

  drawLog() {
    const section = document.createElement("section");
    section.className = "card webhook-log";
    section.setAttribute("aria-labelledby", "webhook-log-title");
    const form = document.createElement("form");
    form.className = "webhook-log-filters";
    form.id = "webhook-log-filters";
    form.noValidate = true;
    form.setAttribute("aria-label", t("webhooks.log_filters"));
    form.setAttribute("data-i18n-attr", "aria-label:webhooks.log_filters");
    const type = field("type", "webhooks.filter_type", { id: "webhook-filter-type", tag: "select" });
    const typeSelect = type.querySelector("select");
    typeSelect.append(label("option", "webhooks.any", null, { value: "" }));
    for (const name of [...this.choices.types, PING]) typeSelect.append(new Option(name, name));
    const result = field("result", "webhooks.filter_result", { id: "webhook-filter-result", tag: "select" });
    const resultSelect = result.querySelector("select");
    resultSelect.append(label("option", "webhooks.any", null, { value: "" }));
    for (const name of RESULTS) resultSelect.append(label("option", `webhooks.result.${name}`, null, { value: name }));
    const apply = label("button", "webhooks.apply", null, { type: "submit", id: "webhook-filter-apply" });
    form.append(type, result, apply);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.filters = {};
      if (typeSelect.value) this.filters.type = typeSelect.value;
      if (resultSelect.value) this.filters.result = resultSelect.value;
      this.loadLog();
    });

    this.logStatus = document.createElement("p");
    this.logStatus.id = "webhook-log-status";
    this.logStatus.setAttribute("role", "status");
    this.logAlert = formAlert();
    this.logAlert.id = "webhook-log-alert";
    const table = document.createElement("table");
    table.id = "webhook-log";
    const head = document.createElement("tr");
    for (const key of [
      "webhooks.col_time",
      "webhooks.col_type",
      "webhooks.col_msg",
      "webhooks.col_attempt",
      "webhooks.col_result",
      "webhooks.col_http",
      "webhooks.col_latency",
      "webhooks.col_error",
      "webhooks.col_next",
      "webhooks.col_actions",
    ]) {
      head.append(label("th", key, null, { scope: "col" }));
    }
    const thead = document.createElement("thead");
    thead.append(head);
    this.logRows = document.createElement("tbody");
    table.append(label("caption", "webhooks.log_caption", { zone: this.zone }), thead, this.logRows);
    this.logWrap = document.createElement("div");
    this.logWrap.className = "table-wrap";
    this.logWrap.tabIndex = 0;
    this.logWrap.setAttribute("role", "region");
    this.logWrap.setAttribute("aria-labelledby", "webhook-log-title");
    this.logWrap.append(table);
    this.logWrap.hidden = true;
    this.moreButton = label("button", "webhooks.more", null, { type: "button", id: "webhook-log-more", class: "more" });
    this.moreButton.hidden = true;
    this.moreButton.addEventListener("click", () => this.loadLog({ more: true }));
    section.append(
      label("h3", "webhooks.log_title", null, { id: "webhook-log-title" }),
      label("p", "webhooks.log_intro", null, { class: "hint" }),
      form,
      this.logAlert,
      this.logStatus,
      this.logWrap,
      this.moreButton,
    );
    return section;
  }

  logQuery(cursor = null) {
    const params = new URLSearchParams({ ...this.filters, limit: String(PAGE) });
    if (cursor) params.set("cursor", cursor);
    return `${this.path}/attempts?${params}`;
  }

  /** Read the newest page of the log (replacing the rows) or, with `more`, the next older. */
  async loadLog({ more = false } = {}) {
    const turn = ++this.turn;
    let page;
    try {
      page = await api("GET", this.logQuery(more ? this.cursor : null));
    } catch (error) {
      if (turn !== this.turn) return;
      this.logAlert.textContent = errorText(error);
      this.logAlert.hidden = false;
      return;
    }
    if (turn !== this.turn) return;
    this.logAlert.hidden = true;
    if (!more) this.logRows.replaceChildren();
    this.logRows.append(...page.items.map((entry) => this.logRow(entry)));
    this.cursor = page.next_cursor;
    this.afterRows();
    // At the end of the log the button goes: the keyboard goes on in the table.
    if (more && !this.cursor) this.logWrap.focus();
  }

  /** Put the attempts newer than the top row above it (a refresh while the view is open). */
  addNewer(page) {
    const top = this.logRows.rows[0]?.dataset.id;
    const newer = top ? page.items.filter((entry) => newerId(entry.id, top)) : page.items;
    if (!newer.length) return;
    if (top && newer.length === page.items.length && page.next_cursor) {
      // More arrived than one page holds: start again from the newest page.
      this.logRows.replaceChildren();
      this.cursor = page.next_cursor;
    }
    this.logRows.prepend(...newer.map((entry) => this.logRow(entry)));
    if (!top) this.cursor = page.next_cursor;
    this.afterRows();
  }

  /** Count, empty note, "older" button, and "Retry now" only on a message's newest attempt
   *  when that one is retrying or failed. */
  afterRows() {
    const count = this.logRows.rows.length;
    this.logWrap.hidden = count === 0;
    this.moreButton.hidden = !this.cursor;
    if (!count) this.logStatus.replaceChildren(label("span", this.cursor ? "webhooks.log_scan_more" : "webhooks.log_empty"));
    else this.logStatus.replaceChildren(label("span", this.cursor ? "webhooks.log_count_more" : "webhooks.log_count", { count }));
    const seen = new Set();
    for (const row of this.logRows.rows) {
      const retry = row.querySelector("button.retry");
      retry.hidden = seen.has(row.dataset.msg) || !["retrying", "failed"].includes(row.dataset.result);
      seen.add(row.dataset.msg);
    }
  }

  logRow(entry) {
    const row = document.createElement("tr");
    Object.assign(row.dataset, { id: entry.id, msg: entry.msg_id, result: entry.result, attempt: String(entry.attempt) });
    const http = entry.status ? text("span", String(entry.status)) : label("span", "webhooks.no_answer", null, { class: "muted" });
    const latency =
      entry.latency_ms !== null && entry.latency_ms !== undefined
        ? label("span", "webhooks.latency", { ms: entry.latency_ms })
        : text("span", "–", { "aria-hidden": "true" });
    const problem = document.createElement("div");
    problem.className = "webhook-error";
    if (entry.error) problem.append(text("span", entry.error));
    if (entry.response) {
      const answer = label("span", "webhooks.response", null, { class: "muted" });
      answer.append(" ", text("code", entry.response));
      problem.append(answer);
    }
    const next = entry.next_at ? timeOf(entry.next_at, this.zone) : text("span", "–", { "aria-hidden": "true" });
    const retry = label("button", "webhooks.retry_now", null, { type: "button", class: "retry" });
    retry.append(text("span", ` ${entry.msg_id}`, { class: "visually-hidden" }));
    retry.addEventListener("click", () => this.retry(entry.msg_id, retry, this.logAlert));
    row.append(
      cell(timeOf(entry.at, this.zone)),
      cell(eventTypeName(entry.type)),
      cell(text("code", entry.msg_id)),
      cell(text("span", String(entry.attempt))),
      cell(resultBadge(entry.result)),
      cell(http),
      cell(latency),
      cell(problem),
      cell(next),
      cell(retry),
    );
    return row;
  }

  async retry(msg, button, alert) {
    alert.hidden = true;
    button.disabled = true;
    try {
      const answer = await api("POST", `${this.path}/messages/${encodeURIComponent(msg)}/retry`);
      this.say(answer.state === "scheduled" ? "webhooks.retry_scheduled" : "webhooks.retry_requeued", { msg });
    } catch (error) {
      alert.textContent = errorText(error);
      alert.hidden = false;
    } finally {
      button.disabled = false;
    }
    this.hurry();
  }

  // -- failed messages --------------------------------------------------------------------------

  drawFailed() {
    const section = document.createElement("section");
    section.className = "card webhook-failed";
    section.setAttribute("aria-labelledby", "webhook-failed-title");
    this.failedStatus = document.createElement("p");
    this.failedStatus.id = "webhook-failed-status";
    this.failedAlert = formAlert();
    const table = document.createElement("table");
    table.id = "webhook-failed";
    const head = document.createElement("tr");
    for (const key of ["webhooks.col_msg", "webhooks.col_type", "webhooks.col_attempts", "webhooks.col_why", "webhooks.col_actions"]) {
      head.append(label("th", key, null, { scope: "col" }));
    }
    const thead = document.createElement("thead");
    thead.append(head);
    this.failedRows = document.createElement("tbody");
    table.append(label("caption", "webhooks.failed_caption"), thead, this.failedRows);
    this.failedWrap = document.createElement("div");
    this.failedWrap.className = "table-wrap";
    this.failedWrap.tabIndex = 0;
    this.failedWrap.setAttribute("role", "region");
    this.failedWrap.setAttribute("aria-labelledby", "webhook-failed-title");
    this.failedWrap.append(table);
    section.append(
      label("h3", "webhooks.failed_title", null, { id: "webhook-failed-title" }),
      label("p", "webhooks.failed_intro", null, { class: "hint" }),
      this.failedAlert,
      this.failedStatus,
      this.failedWrap,
    );
    return section;
  }

  async loadFailed(items = null) {
    if (!items) {
      try {
        items = (await api("GET", `${this.path}/failed`)).items;
      } catch (error) {
        this.failedAlert.textContent = errorText(error);
        this.failedAlert.hidden = false;
        return;
      }
    }
    const seen = JSON.stringify(items);
    if (seen === this.failedSeen && this.failedRows.rows.length === items.length) return;
    this.failedSeen = seen;
    // A refresh keeps the keyboard on the row it was on (by message) when that row stays.
    const focused = this.failedRows.contains(document.activeElement)
      ? document.activeElement.closest("tr")?.dataset.msg
      : null;
    this.failedRows.replaceChildren(...items.map((item) => this.failedRow(item)));
    this.failedWrap.hidden = !items.length;
    this.failedStatus.replaceChildren(
      label("span", items.length ? "webhooks.failed_count" : "webhooks.failed_none", { count: items.length }),
    );
    if (focused) {
      const again = this.failedRows.querySelector(`tr[data-msg="${CSS.escape(focused)}"] button`);
      (again || this.failedWrap).focus();
    }
  }

  failedRow(item) {
    const row = document.createElement("tr");
    row.dataset.msg = item.msg_id;
    const whyKnown = ["exhausted", "gone", "failing", "endpoint_disabled"].includes(item.why);
    const retry = label("button", "webhooks.retry_now", null, { type: "button", class: "retry" });
    retry.append(text("span", ` ${item.msg_id}`, { class: "visually-hidden" }));
    retry.addEventListener("click", () => this.retry(item.msg_id, retry, this.failedAlert));
    row.append(
      cell(text("code", item.msg_id)),
      cell(eventTypeName(item.type)),
      cell(text("span", String(item.attempts))),
      cell(whyKnown ? label("span", `webhooks.why.${item.why}`) : text("span", item.why)),
      cell(retry),
    );
    return row;
  }

  // -- keeping fresh ----------------------------------------------------------------------------

  schedule(delay) {
    clearTimeout(this.timer);
    if (this.closed) return;
    this.timer = setTimeout(() => this.tick(), delay);
  }

  poll() {
    this.schedule(POLL_MS);
  }

  async tick() {
    if (this.closed) return;
    if (document.visibilityState === "visible") await this.refresh();
    if (this.closed) return;
    this.schedule(Date.now() < this.fastUntil ? FAST_MS : POLL_MS);
  }

  /** Read the endpoint, the newest page of the log and the failed messages again; draw what
   *  changed. A failed read is tried again at the next tick (a deleted endpoint says so). */
  async refresh() {
    const turn = this.turn;
    let endpoint;
    let page;
    let failed;
    try {
      [endpoint, page, failed] = await Promise.all([
        api("GET", this.path),
        api("GET", this.logQuery()),
        api("GET", `${this.path}/failed`),
      ]);
    } catch (error) {
      if (error.status === 404 && !this.closed) {
        this.close();
        this.fail(error);
      }
      return;
    }
    if (this.closed) return;
    if (JSON.stringify(endpoint) !== this.seen) this.changed(endpoint);
    if (turn === this.turn) this.addNewer(page);
    await this.loadFailed(failed.items);
  }
}

/** The name of a log entry's type (the ping is not one an endpoint asks for). */
function eventTypeName(type) {
  return text("code", type);
}

/** Whether a log entry id ("<ms>-<seq>", a Redis stream id) is newer than another. */
function newerId(a, b) {
  const [am, as] = a.split("-").map(Number);
  const [bm, bs] = b.split("-").map(Number);
  return am > bm || (am === bm && as > bs);
}
