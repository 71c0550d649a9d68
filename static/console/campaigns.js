// The console's campaigns section: the list (#campaigns), a new campaign (#campaigns/new) and
// one campaign (#campaigns/<id>): its settings and targets, status moves, offers with their
// caps and coupon previews, and its game.
import { api, clearErrors, errorText } from "../js/api.js";
import { askToConfirm } from "../js/confirm.js";
import { formatMoney, formatTime, label, t } from "../js/i18n.js";
import {
  DEFAULT_TZ,
  burnBar,
  fenToYuan,
  field,
  formAlert,
  localError,
  options,
  showFieldError,
  statusBadge,
  timeZones,
  unixToZoned,
  wholeNumber,
  yuanToFen,
  zonedToUnix,
} from "./campaign-util.js";
import { TargetsPicker, loadStores } from "./campaign-targets.js";
import { GameSetup } from "./game.js";
import { OffersPanel } from "./offers.js";

const STATUSES = ["draft", "scheduled", "live", "paused", "ended"];
const PAGE = 20;
// The moves a marketer may ask for, by status (promotions/models.py TRANSITIONS), in the
// order the buttons are shown: [to, catalogue key of the button]. scheduled -> live is left
// out: a scheduled campaign is live from its start by itself, and before it the API refuses
// (OUTSIDE_WINDOW), so the button could only ever fail.
const MOVES = {
  draft: [["scheduled", "campaigns.move.schedule"], ["ended", "campaigns.move.end"]],
  scheduled: [["draft", "campaigns.move.draft"], ["ended", "campaigns.move.end"]],
  live: [["paused", "campaigns.move.pause"], ["ended", "campaigns.move.end"]],
  paused: [["live", "campaigns.move.resume"], ["ended", "campaigns.move.end"]],
  ended: [],
};

export async function show(view, ctx) {
  const [first] = ctx.args;
  if (!first) return showList(view, ctx);
  return showCampaign(view, ctx, first === "new" ? null : first);
}

// --- the list ---------------------------------------------------------------------------

async function showList(view, ctx) {
  const heading = label("h2", "campaigns.title", null, { id: "campaigns-title" });
  const tools = document.createElement("div");
  tools.className = "list-tools";
  const filter = field("status", "campaigns.filter_status", { tag: "select" });
  const select = filter.querySelector("select");
  options(select, [["", "campaigns.status_all"], ...STATUSES.map((s) => [s, `campaigns.status.${s}`])], "");
  const create = label("a", "campaigns.new", null, { href: "#campaigns/new", class: "button-link", id: "campaign-new" });
  tools.append(filter, create);
  const section = document.createElement("section");
  section.className = "card";
  section.setAttribute("aria-labelledby", "campaigns-title");
  const body = document.createElement("div");
  section.append(heading, tools, body);
  view.append(section);

  const table = document.createElement("table");
  table.id = "campaign-list";
  const head = document.createElement("tr");
  for (const key of ["campaigns.col_name", "campaigns.col_status", "campaigns.col_window", "campaigns.col_budget", "campaigns.col_issued"]) {
    head.append(label("th", key, null, { scope: "col" }));
  }
  const thead = document.createElement("thead");
  thead.append(head);
  const tbody = document.createElement("tbody");
  table.append(label("caption", "campaigns.list_caption"), thead, tbody);
  const wrap = document.createElement("div");
  wrap.className = "table-wrap";
  wrap.tabIndex = 0;
  wrap.setAttribute("role", "region");
  wrap.setAttribute("aria-labelledby", "campaigns-title");
  wrap.append(table);
  const more = label("button", "campaigns.more", null, { type: "button", id: "campaigns-more" });
  const note = document.createElement("p");
  note.setAttribute("role", "status");
  const alert = formAlert();

  let cursor = null;
  const load = async (reset) => {
    if (reset) {
      cursor = null;
      tbody.replaceChildren();
    }
    const query = new URLSearchParams({ limit: String(PAGE) });
    if (select.value) query.set("status", select.value);
    if (cursor) query.set("cursor", cursor);
    let page;
    try {
      page = await api("GET", `/api/campaigns?${query}`);
    } catch (error) {
      alert.textContent = errorText(error);
      alert.hidden = false;
      return;
    }
    alert.hidden = true;
    for (const campaign of page.items) tbody.append(listRow(campaign));
    cursor = page.next_cursor;
    more.hidden = !cursor;
    const empty = !tbody.children.length;
    wrap.hidden = empty;
    note.replaceChildren(empty ? label("span", "campaigns.none") : label("span", "campaigns.count", { count: tbody.children.length }));
  };
  more.addEventListener("click", () => load(false));
  select.addEventListener("change", () => load(true));
  body.append(alert, note, wrap, more);
  await load(true);
  // Times and money are formatted for the language: draw the rows again when it changes.
  const relabel = () => load(true);
  document.addEventListener("languagechange", relabel);
  return () => document.removeEventListener("languagechange", relabel);
}

function listRow(campaign) {
  const row = document.createElement("tr");
  row.dataset.campaignId = campaign.id;
  const cell = (...content) => {
    const td = document.createElement("td");
    td.append(...content);
    return td;
  };
  const link = document.createElement("a");
  link.href = `#campaigns/${encodeURIComponent(campaign.id)}`;
  link.textContent = campaign.name;
  const tz = campaign.timezone || DEFAULT_TZ;
  const span = document.createElement("span");
  span.className = "window";
  span.textContent = `${formatTime(campaign.starts_at, tz)} –\n${formatTime(campaign.ends_at, tz)}`;
  const counters = campaign.counters || {};
  row.append(
    cell(link),
    cell(statusBadge(campaign.status)),
    cell(span),
    cell(burnBar(counters.value_fen || 0, campaign.budget?.value_fen ?? null, formatMoney)),
    cell(burnBar(counters.issued || 0, campaign.budget?.count ?? null)),
  );
  return row;
}

// --- one campaign -----------------------------------------------------------------------

async function showCampaign(view, ctx, id) {
  const teardowns = [];
  let campaign = null;
  let stores;
  try {
    [campaign, stores] = await Promise.all([id ? api("GET", `/api/campaigns/${encodeURIComponent(id)}`) : null, loadStores()]);
  } catch (error) {
    const alert = formAlert();
    alert.textContent = errorText(error);
    alert.hidden = false;
    view.append(label("h2", "campaigns.title"), alert, label("a", "campaigns.back", null, { href: "#campaigns" }));
    return;
  }
  const back = label("a", "campaigns.back", null, { href: "#campaigns", class: "back-link" });
  const heading = document.createElement("h2");
  heading.id = "campaign-title";
  if (campaign) heading.textContent = campaign.name;
  else heading.append(label("span", "campaigns.new_title"));
  view.append(back, heading);

  const status = id ? new StatusPanel(campaign, (next) => refresh(next)) : null;
  if (status) view.append(status.element);

  const form = new CampaignForm(campaign, stores, async (saved) => {
    if (!id) {
      ctx.navigate("campaigns", saved.id);
      return;
    }
    refresh(saved);
  });
  view.append(form.element);
  teardowns.push(() => form.teardown());
  await form.targets.drawMap();

  let offers = null;
  let game = null;
  if (id) {
    offers = new OffersPanel(campaign, stores, () => game?.offersChanged(offers.offers));
    game = new GameSetup(campaign);
    view.append(offers.element, game.element);
    teardowns.push(() => offers.teardown());
    await offers.load();
    await game.load(offers.offers);
  }

  function refresh(next) {
    campaign = next;
    heading.textContent = next.name;
    status?.update(next);
    form.update(next);
    offers?.campaignChanged(next);
    game?.campaignChanged(next);
  }

  // Times, money and offer headlines are formatted for the language: redraw them on a change
  // (the forms' labels follow by themselves, and what is typed in them stays).
  const relabel = () => {
    status?.update(campaign);
    offers?.draw();
    game?.relabel();
  };
  document.addEventListener("languagechange", relabel);
  teardowns.push(() => document.removeEventListener("languagechange", relabel));
  return () => {
    for (const done of teardowns) done();
  };
}

/** Status, window, budget burn and the moves allowed from here (with a confirmation for
 *  "end", which cannot be undone). */
class StatusPanel {
  constructor(campaign, changed) {
    this.changed = changed;
    this.element = document.createElement("section");
    this.element.className = "card campaign-status";
    this.element.id = "campaign-status";
    this.element.setAttribute("aria-labelledby", "campaign-status-title");
    this.update(campaign);
  }

  update(campaign) {
    this.campaign = campaign;
    const tz = campaign.timezone;
    const facts = document.createElement("dl");
    facts.className = "facts";
    const fact = (key, ...value) => {
      const dd = document.createElement("dd");
      dd.append(...value);
      facts.append(label("dt", key), dd);
      return dd;
    };
    fact("campaigns.col_status", statusBadge(campaign.status)).id = "campaign-status-value";
    const span = document.createElement("span");
    span.textContent = `${formatTime(campaign.starts_at, tz)} – ${formatTime(campaign.ends_at, tz)}`;
    fact("campaigns.col_window", span).id = "campaign-window";
    const counters = campaign.counters || {};
    fact("campaigns.col_budget", burnBar(counters.value_fen || 0, campaign.budget?.value_fen ?? null, formatMoney));
    fact("campaigns.col_issued", burnBar(counters.issued || 0, campaign.budget?.count ?? null));
    fact("campaigns.col_redeemed", document.createTextNode(`${counters.redeemed || 0} · ${formatMoney(counters.discount_fen || 0)}`));

    const actions = document.createElement("div");
    actions.className = "actions";
    for (const [to, key] of MOVES[campaign.status] || []) {
      const button = label("button", key, null, { type: "button", "data-move": to });
      if (to === "ended") button.classList.add("danger");
      button.addEventListener("click", () => (to === "ended" ? this.confirmEnd(button) : this.move(to, button)));
      actions.append(button);
    }
    if (campaign.status === "draft") actions.append(label("p", "campaigns.move.schedule_hint", null, { class: "hint" }));
    if (campaign.status === "scheduled") {
      actions.append(label("p", "campaigns.move.scheduled_hint", { start: formatTime(campaign.starts_at, tz) }, { class: "hint" }));
    }
    if (campaign.status === "ended") actions.append(label("p", "campaigns.move.ended_hint", null, { class: "hint" }));
    this.alert = formAlert();
    this.alert.id = "campaign-move-error";
    this.element.replaceChildren(label("h3", "campaigns.status_title", null, { id: "campaign-status-title" }), facts, actions, this.alert);
  }

  async move(to, button) {
    button.disabled = true;
    this.alert.hidden = true;
    try {
      const next = await api("POST", `/api/campaigns/${encodeURIComponent(this.campaign.id)}/transition`, { to });
      this.changed(next);
      this.element.querySelector("[data-move]")?.focus();
    } catch (error) {
      button.disabled = false;
      this.alert.textContent = errorText(error);
      this.alert.hidden = false;
      if (error.details?.status && error.details.status !== this.campaign.status) {
        // The campaign moved meanwhile (by its clock, or another marketer): show where it is.
        api("GET", `/api/campaigns/${encodeURIComponent(this.campaign.id)}`)
          .then((fresh) => {
            const text = this.alert.textContent;
            this.changed(fresh);
            this.alert.textContent = text;
            this.alert.hidden = false;
          })
          .catch(() => {}); // the refusal is shown already; the next load shows the status
      }
    }
  }

  confirmEnd(button) {
    askToConfirm({
      opener: button,
      titleKey: "campaigns.end_title",
      titleParams: { name: this.campaign.name },
      textKey: "campaigns.end_text",
      yesKey: "campaigns.end_confirm",
      noKey: "campaigns.end_cancel",
      onYes: () => this.move("ended", button),
    });
  }
}

/** The campaign's settings: name, time zone, window (typed in that zone), budget, trust
 *  floor and targets. Creates (POST) or changes (PATCH) the campaign. */
class CampaignForm {
  constructor(campaign, stores, saved) {
    this.campaign = campaign;
    this.saved = saved;
    const form = (this.element = document.createElement("form"));
    form.className = "card campaign-form";
    form.id = "campaign-form";
    form.noValidate = true;
    form.setAttribute("aria-labelledby", "campaign-form-title");
    const tz = campaign?.timezone || DEFAULT_TZ;
    const zone = field("timezone", "campaigns.timezone", { tag: "select", hint: "campaigns.timezone_hint" });
    this.zone = zone.querySelector("select");
    options(this.zone, timeZones().map((z) => [z, null, z]), tz);
    this.zone.dataset.previous = tz;
    // The window stays the same instant when the zone changes: its wall-clock text follows.
    this.zone.addEventListener("change", () => {
      for (const name of ["starts_at", "ends_at"]) {
        const input = form.elements[name];
        const at = zonedToUnix(input.value, this.zone.dataset.previous);
        if (at !== null) input.value = unixToZoned(at, this.zone.value);
      }
      this.zone.dataset.previous = this.zone.value;
      this.zoneNote();
    });
    const windowBox = document.createElement("fieldset");
    windowBox.className = "window-fields";
    windowBox.append(
      label("legend", "campaigns.window"),
      field("starts_at", "campaigns.starts_at", { type: "datetime-local", value: campaign ? unixToZoned(campaign.starts_at, tz) : "" }),
      field("ends_at", "campaigns.ends_at", { type: "datetime-local", value: campaign ? unixToZoned(campaign.ends_at, tz) : "" }),
    );
    this.zoneText = label("p", "campaigns.window_zone", { zone: tz }, { class: "hint", id: "campaign-window-zone" });
    windowBox.append(this.zoneText);
    const budget = document.createElement("fieldset");
    budget.name = "budget";
    budget.append(
      label("legend", "campaigns.budget"),
      field("budget.value_fen", "campaigns.budget_value", { value: fenToYuan(campaign?.budget?.value_fen ?? null), attrs: { inputmode: "decimal", autocomplete: "off" } }),
      field("budget.count", "campaigns.budget_count", { type: "number", value: campaign?.budget?.count ?? "", attrs: { min: "0", step: "1" } }),
      label("p", "campaigns.budget_hint", null, { class: "hint" }),
    );
    this.targets = new TargetsPicker(stores, campaign?.targets);
    this.alert = formAlert();
    const submit = label("button", campaign ? "campaigns.save" : "campaigns.create", null, { type: "submit", id: "campaign-save" });
    this.done = document.createElement("p");
    this.done.setAttribute("role", "status");
    this.done.className = "saved";
    form.append(
      label("h3", campaign ? "campaigns.settings_title" : "campaigns.new_title", null, { id: "campaign-form-title" }),
      field("name", "campaigns.name", { value: campaign?.name || "", attrs: { autocomplete: "off", maxlength: "200" } }),
      zone,
      windowBox,
      budget,
      field("min_trust", "campaigns.min_trust", { type: "number", value: campaign?.min_trust ?? 50, hint: "campaigns.min_trust_hint", attrs: { min: "0", max: "100", step: "1" } }),
      this.targets.element,
      this.alert,
      submit,
      this.done,
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    if (campaign?.status === "ended") this.freeze();
  }

  zoneNote() {
    this.zoneText.dataset.i18nParams = JSON.stringify({ zone: this.zone.value });
    this.zoneText.textContent = t("campaigns.window_zone", { zone: this.zone.value });
  }

  freeze() {
    for (const el of this.element.querySelectorAll("input, select, button")) el.disabled = true;
    this.element.append(label("p", "campaigns.ended_frozen", null, { class: "hint" }));
  }

  /** The body for the API, or null after showing what is wrong. */
  read() {
    const form = this.element;
    clearErrors(form);
    this.done.textContent = "";
    const tz = this.zone.value;
    const starts = zonedToUnix(form.elements.starts_at.value, tz);
    if (starts === null) return localError(form, "starts_at", "campaigns.need_time");
    const ends = zonedToUnix(form.elements.ends_at.value, tz);
    if (ends === null) return localError(form, "ends_at", "campaigns.need_time");
    const value = yuanToFen(form.elements["budget.value_fen"].value);
    if (Number.isNaN(value)) return localError(form, "budget.value_fen", "campaigns.need_yuan");
    const count = wholeNumber(form.elements["budget.count"].value);
    if (Number.isNaN(count)) return localError(form, "budget.count", "campaigns.need_whole");
    const trust = wholeNumber(form.elements.min_trust.value);
    if (Number.isNaN(trust) || trust === null) return localError(form, "min_trust", "campaigns.need_whole");
    return {
      name: form.elements.name.value,
      timezone: tz,
      starts_at: starts,
      ends_at: ends,
      budget: { value_fen: value, count },
      min_trust: trust,
      targets: this.targets.value(),
    };
  }

  async submit() {
    const body = this.read();
    if (!body) return;
    const button = this.element.querySelector("#campaign-save");
    button.disabled = true;
    try {
      const saved = this.campaign
        ? await api("PATCH", `/api/campaigns/${encodeURIComponent(this.campaign.id)}`, body)
        : await api("POST", "/api/campaigns", body);
      this.done.textContent = t("campaigns.saved");
      await this.saved(saved);
    } catch (error) {
      showFieldError(this.element, error);
    } finally {
      button.disabled = false;
    }
  }

  update(campaign) {
    this.campaign = campaign;
    if (campaign.status === "ended" && !this.element.querySelector("input:disabled")) this.freeze();
  }

  teardown() {
    this.targets.teardown();
  }
}
