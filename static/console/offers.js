// A campaign's offers (coupon templates): the list with cap burn, a form to add one of each
// kind with every cap, a form to change what may change after creation (OfferPatch: name,
// caps, channels, visit trigger, on/off), and the coupon card preview in both languages.
import { api, apiFile, clearErrors, errorText, token } from "../js/api.js";
import { formatMoney, label, t } from "../js/i18n.js";
import {
  burnBar,
  fenToYuan,
  field,
  formAlert,
  localError,
  options,
  showFieldError,
  unixToZoned,
  wholeNumber,
  yuanToFen,
  zonedToUnix,
} from "./campaign-util.js";
import { ChoiceList } from "./campaign-targets.js";

const KINDS = ["amount_off", "percent_off", "gift"];
const CHANNELS = ["visit", "game", "live_drop", "manual"];
const CAPS = [
  ["total", "count"],
  ["value_fen", "money"],
  ["per_shopper", "count"],
  ["per_shopper_day", "count"],
  ["per_store_day", "count"],
];
const CARD_LANGUAGES = [
  ["en", "campaigns.preview_en"],
  ["zh-CN", "campaigns.preview_zh"],
];

/** The offer's headline in the reader's language: "¥20.00 off", "15% off, up to ¥30.00"… */
export function offerHeadline(offer) {
  if (offer.kind === "amount_off") return t("campaigns.offer.title_amount", { amount: formatMoney(offer.amount_off_fen) });
  if (offer.kind === "percent_off") {
    return t("campaigns.offer.title_percent", { percent: offer.percent_off, max: formatMoney(offer.max_off_fen) });
  }
  return t("campaigns.offer.title_gift", { item: offer.gift_item });
}

function capsText(caps) {
  const parts = [];
  for (const [name, unit] of CAPS) {
    const value = caps?.[name];
    if (value === null || value === undefined) continue;
    parts.push(t(`campaigns.cap_short.${name}`, { value: unit === "money" ? formatMoney(value) : value }));
  }
  return parts.length ? parts.join(" · ") : t("campaigns.caps_none");
}

export class OffersPanel {
  constructor(campaign, stores, changed) {
    this.campaign = campaign;
    this.stores = stores;
    this.changed = changed;
    this.offers = [];
    this.previews = [];
    const section = (this.element = document.createElement("section"));
    section.className = "card offers";
    section.id = "offers";
    section.setAttribute("aria-labelledby", "offers-title");
    this.alert = formAlert();
    this.add = label("button", "campaigns.offer.add", null, { type: "button", id: "offer-add" });
    this.add.addEventListener("click", () => this.openForm(null));
    this.body = document.createElement("div");
    this.formBox = document.createElement("div");
    this.previewBox = document.createElement("div");
    section.append(label("h3", "campaigns.offers_title", null, { id: "offers-title" }), this.alert, this.body, this.add, this.formBox, this.previewBox);
    this.campaignChanged(campaign);
  }

  campaignChanged(campaign) {
    this.campaign = campaign;
    this.add.disabled = campaign.status === "ended";
  }

  async load() {
    try {
      this.offers = (await api("GET", `/api/campaigns/${encodeURIComponent(this.campaign.id)}/offers`)).items;
    } catch (error) {
      this.alert.textContent = errorText(error);
      this.alert.hidden = false;
      return;
    }
    this.alert.hidden = true;
    this.draw();
    this.changed();
  }

  draw() {
    if (!this.offers.length) {
      this.body.replaceChildren(label("p", "campaigns.offers_none"));
      return;
    }
    const table = document.createElement("table");
    table.id = "offer-list";
    const head = document.createElement("tr");
    for (const key of ["campaigns.offer.col_name", "campaigns.offer.col_terms", "campaigns.offer.col_caps", "campaigns.offer.col_issued", "campaigns.offer.col_channels", "campaigns.offer.col_active", "campaigns.offer.col_actions"]) {
      head.append(label("th", key, null, { scope: "col" }));
    }
    const thead = document.createElement("thead");
    thead.append(head);
    const tbody = document.createElement("tbody");
    for (const offer of this.offers) {
      const row = document.createElement("tr");
      row.dataset.offerId = offer.id;
      const cell = (...content) => {
        const td = document.createElement("td");
        td.append(...content);
        return td;
      };
      const terms = document.createElement("span");
      const spend = offer.min_spend_fen ? t("campaigns.offer.min_spend_is", { amount: formatMoney(offer.min_spend_fen) }) : t("campaigns.offer.no_minimum");
      terms.textContent = `${offerHeadline(offer)} · ${spend}`;
      const edit = label("button", "campaigns.offer.edit", { name: offer.name }, { type: "button", "data-action": "edit" });
      edit.addEventListener("click", () => this.openForm(offer));
      const preview = label("button", "campaigns.offer.preview", { name: offer.name }, { type: "button", "data-action": "preview" });
      preview.addEventListener("click", () => this.preview(offer));
      const toggle = label("button", offer.active ? "campaigns.offer.switch_off" : "campaigns.offer.switch_on", { name: offer.name }, { type: "button", "data-action": "toggle" });
      toggle.disabled = this.campaign.status === "ended";
      toggle.addEventListener("click", () => this.toggle(offer, toggle));
      const actions = document.createElement("div");
      actions.className = "actions";
      actions.append(edit, toggle, preview);
      const nameCell = document.createElement("th");
      nameCell.scope = "row";
      nameCell.textContent = offer.name;
      row.append(
        nameCell,
        cell(terms),
        cell(capsText(offer.caps)),
        cell(burnBar(offer.counters?.issued || 0, offer.caps?.total ?? null)),
        cell(offer.channels.map((c) => t(`campaigns.channel.${c}`)).join(", ")),
        cell(label("span", offer.active ? "campaigns.offer.on" : "campaigns.offer.off")),
        cell(actions),
      );
      tbody.append(row);
    }
    table.append(label("caption", "campaigns.offers_caption"), thead, tbody);
    const wrap = document.createElement("div");
    wrap.className = "table-wrap";
    wrap.tabIndex = 0;
    wrap.setAttribute("role", "region");
    wrap.setAttribute("aria-labelledby", "offers-title");
    wrap.append(table);
    this.body.replaceChildren(wrap);
  }

  /** Switch an offer on or off (PATCH active), the quickest way to stop one issuing. */
  async toggle(offer, button) {
    button.disabled = true;
    this.alert.hidden = true;
    try {
      await api("PATCH", `/api/campaigns/${encodeURIComponent(this.campaign.id)}/offers/${encodeURIComponent(offer.id)}`, { active: !offer.active });
    } catch (error) {
      button.disabled = false;
      this.alert.textContent = errorText(error);
      this.alert.hidden = false;
      return;
    }
    await this.load();
    this.body.querySelector(`tr[data-offer-id="${CSS.escape(offer.id)}"] [data-action=toggle]`)?.focus();
  }

  openForm(offer) {
    this.closeForm();
    this.form = new OfferForm(this.campaign, this.stores, offer, {
      saved: async () => {
        this.closeForm();
        await this.load();
        this.add.focus();
      },
      cancel: () => {
        this.closeForm();
        this.add.focus();
      },
    });
    this.formBox.append(this.form.element);
    this.form.element.querySelector("input[name=name]").focus();
  }

  closeForm() {
    this.form = null;
    this.formBox.replaceChildren();
  }

  /** Show the card a shopper gets, in English and Chinese side by side. The images are
   *  fetched with the Authorization header and shown through object URLs (no token in URLs). */
  async preview(offer) {
    this.revoke();
    const box = document.createElement("section");
    box.className = "card-preview";
    box.id = "card-preview";
    box.setAttribute("aria-labelledby", "card-preview-title");
    const figures = document.createElement("div");
    figures.className = "card-figures";
    box.append(
      label("h4", "campaigns.preview_title", { name: offer.name }, { id: "card-preview-title" }),
      label("p", "campaigns.preview_hint", null, { class: "hint" }),
      figures,
    );
    this.previewBox.replaceChildren(box);
    const base = `/api/campaigns/${encodeURIComponent(this.campaign.id)}/offers/${encodeURIComponent(offer.id)}/card.png`;
    await Promise.all(
      CARD_LANGUAGES.map(async ([lang, key]) => {
        const figure = document.createElement("figure");
        figure.dataset.lang = lang;
        figures.append(figure);
        try {
          const response = await apiFile(`${base}?lang=${encodeURIComponent(lang)}`, "image/png");
          const url = URL.createObjectURL(await response.blob());
          this.previews.push(url);
          const image = document.createElement("img");
          image.src = url;
          image.width = 300;
          image.height = 450;
          image.alt = t("campaigns.preview_alt", { language: t(key), title: offerHeadline(offer) });
          figure.append(image, label("figcaption", key));
        } catch (error) {
          const note = document.createElement("p");
          note.className = "form-error";
          note.setAttribute("role", "alert");
          note.textContent = errorText(error);
          figure.append(note, label("figcaption", key));
        }
      }),
    );
    box.scrollIntoView({ block: "nearest" });
  }

  revoke() {
    for (const url of this.previews) URL.revokeObjectURL(url);
    this.previews = [];
  }

  teardown() {
    this.revoke();
  }
}

/** Add an offer (every field), or change one (only what OfferPatch takes: its terms are fixed
 *  once it exists, so every coupon of an offer means the same thing). */
class OfferForm {
  constructor(campaign, stores, offer, { saved, cancel }) {
    this.campaign = campaign;
    this.offer = offer;
    this.saved = saved;
    const tz = campaign.timezone;
    const form = (this.element = document.createElement("form"));
    form.className = "offer-form";
    form.id = "offer-form";
    form.noValidate = true;
    form.setAttribute("aria-labelledby", "offer-form-title");
    const money = (name, key, fen) => field(name, key, { value: fenToYuan(fen ?? null), attrs: { inputmode: "decimal", autocomplete: "off" } });
    const count = (name, key, value) => field(name, key, { type: "number", value: value ?? "", attrs: { min: "0", step: "1" } });

    // The terms: fixed once the offer exists.
    const terms = (this.terms = document.createElement("fieldset"));
    terms.className = "offer-terms";
    const kind = field("kind", "campaigns.offer.kind", { tag: "select" });
    this.kind = kind.querySelector("select");
    options(this.kind, KINDS.map((k) => [k, `campaigns.offer.kind_${k}`]), offer?.kind || "amount_off");
    this.kindFields = {
      amount_off: [money("amount_off_fen", "campaigns.offer.amount_off", offer?.amount_off_fen)],
      percent_off: [
        field("percent_off", "campaigns.offer.percent_off", { type: "number", value: offer?.percent_off ?? "", attrs: { min: "1", max: "100", step: "1" } }),
        money("max_off_fen", "campaigns.offer.max_off", offer?.max_off_fen),
      ],
      gift: [
        field("gift_item", "campaigns.offer.gift_item", { value: offer?.gift_item || "", attrs: { maxlength: "120", autocomplete: "off" } }),
        money("gift_value_fen", "campaigns.offer.gift_value", offer?.gift_value_fen || null),
      ],
    };
    this.kind.addEventListener("change", () => this.showKind());

    const validity = document.createElement("fieldset");
    validity.name = "validity";
    const fixed = offer?.validity?.days === null || offer?.validity?.days === undefined ? Boolean(offer) : false;
    const radio = (value, key, checked) => {
      const wrap = document.createElement("div");
      wrap.className = "check";
      const input = document.createElement("input");
      Object.assign(input, { type: "radio", name: "validity-kind", value, id: `validity-${value}`, checked });
      input.addEventListener("change", () => this.showValidity());
      wrap.append(input, label("label", key, null, { for: input.id }));
      return wrap;
    };
    this.daysField = field("validity.days", "campaigns.offer.valid_days", { type: "number", value: offer?.validity?.days ?? 7, attrs: { min: "1", max: "366", step: "1" } });
    this.windowFields = [
      field("validity.starts_at", "campaigns.offer.valid_from", { type: "datetime-local", value: offer?.validity?.starts_at ? unixToZoned(offer.validity.starts_at, tz) : "" }),
      field("validity.ends_at", "campaigns.offer.valid_until", { type: "datetime-local", value: offer?.validity?.ends_at ? unixToZoned(offer.validity.ends_at, tz) : "" }),
    ];
    validity.append(
      label("legend", "campaigns.offer.validity"),
      radio("days", "campaigns.offer.validity_days", !fixed),
      radio("window", "campaigns.offer.validity_window", fixed),
      this.daysField,
      ...this.windowFields,
      label("p", "campaigns.window_zone", { zone: tz }, { class: "hint" }),
    );

    const eligible = document.createElement("fieldset");
    eligible.name = "eligible";
    const mode = field("eligible.mode", "campaigns.offer.eligible_mode", { tag: "select" });
    this.mode = mode.querySelector("select");
    options(this.mode, [["campaign", "campaigns.offer.eligible_campaign"], ["stores", "campaigns.offer.eligible_stores"], ["brand", "campaigns.offer.eligible_brand"]], offer?.eligible?.mode || "campaign");
    this.mode.addEventListener("change", () => this.showMode());
    this.eligibleStores = new ChoiceList({
      name: "eligible.stores",
      legendKey: "campaigns.offer.eligible_store_list",
      items: stores.map((s) => ({ value: s.id, text: `${s.name} (${s.id}) · ${s.city}` })),
      selected: offer?.eligible?.stores || [],
    });
    const brand = field("eligible.brand", "campaigns.offer.brand", { tag: "select" });
    this.brand = brand.querySelector("select");
    const brands = [...new Set(stores.map((s) => s.brand).filter(Boolean))].sort();
    options(this.brand, [["", "campaigns.offer.pick"], ...brands.map((b) => [b, null, b])], offer?.eligible?.brand || "");
    this.brandField = brand;
    eligible.append(label("legend", "campaigns.offer.eligible"), mode, this.eligibleStores.element, brand);

    const program = field("membership_program", "campaigns.offer.program", { tag: "select" });
    this.program = program.querySelector("select");
    options(this.program, [["", "campaigns.offer.no_program"]], offer?.membership_program || "");
    api("GET", "/api/membership-programs")
      .then((list) => options(this.program, list.items.map((p) => [p.id, null, `${p.name} (${p.id})`]), offer?.membership_program || ""))
      .catch(() => {});

    terms.append(
      label("legend", "campaigns.offer.terms"),
      kind,
      ...Object.values(this.kindFields).flat(),
      money("min_spend_fen", "campaigns.offer.min_spend", offer?.min_spend_fen || null),
      validity,
      eligible,
      program,
    );
    if (offer) {
      terms.disabled = true;
      terms.setAttribute("aria-describedby", "offer-fixed-note");
      terms.prepend(label("p", "campaigns.offer.fixed_note", null, { class: "hint fixed-note", id: "offer-fixed-note" }));
    }

    // What can change at any time.
    const channels = document.createElement("fieldset");
    channels.name = "channels";
    channels.className = "checks";
    channels.append(label("legend", "campaigns.offer.channels"));
    const chosen = new Set(offer?.channels || ["manual"]);
    for (const channel of CHANNELS) {
      const wrap = document.createElement("div");
      wrap.className = "check";
      const box = document.createElement("input");
      Object.assign(box, { type: "checkbox", value: channel, id: `channel-${channel}`, checked: chosen.has(channel) });
      box.dataset.channel = channel;
      wrap.append(box, label("label", `campaigns.channel.${channel}`, null, { for: box.id }));
      channels.append(wrap);
    }
    const trigger = field("visit_trigger", "campaigns.offer.visit_trigger", { tag: "select", hint: "campaigns.offer.visit_trigger_hint" });
    options(trigger.querySelector("select"), [["dwell", "campaigns.offer.trigger_dwell"], ["enter", "campaigns.offer.trigger_enter"]], offer?.visit_trigger || "dwell");

    const caps = document.createElement("fieldset");
    caps.name = "caps";
    caps.className = "caps";
    caps.append(label("legend", "campaigns.offer.caps"), label("p", "campaigns.offer.caps_hint", null, { class: "hint" }));
    for (const [name, unit] of CAPS) {
      const value = offer?.caps?.[name] ?? null;
      caps.append(unit === "money" ? money(`caps.${name}`, `campaigns.cap.${name}`, value) : count(`caps.${name}`, `campaigns.cap.${name}`, value));
    }

    const active = document.createElement("div");
    active.className = "check";
    const activeBox = document.createElement("input");
    Object.assign(activeBox, { type: "checkbox", name: "active", id: "offer-active", checked: offer ? offer.active : true });
    active.append(activeBox, label("label", "campaigns.offer.active", null, { for: activeBox.id }));

    this.alert = formAlert();
    const save = label("button", offer ? "campaigns.offer.save" : "campaigns.offer.create", null, { type: "submit", id: "offer-save" });
    const back = label("button", "campaigns.offer.cancel", null, { type: "button" });
    back.addEventListener("click", cancel);
    const actions = document.createElement("div");
    actions.className = "actions";
    actions.append(save, back);
    form.append(
      label("h4", offer ? "campaigns.offer.edit_title" : "campaigns.offer.new_title", offer ? { name: offer.name } : null, { id: "offer-form-title" }),
      field("name", "campaigns.offer.name", { value: offer?.name || "", attrs: { maxlength: "120", autocomplete: "off" } }),
      terms,
      channels,
      trigger,
      caps,
      active,
      this.alert,
      actions,
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.showKind();
    this.showValidity();
    this.showMode();
  }

  showKind() {
    for (const [kind, fields] of Object.entries(this.kindFields)) {
      for (const wrap of fields) wrap.hidden = kind !== this.kind.value;
    }
  }

  showValidity() {
    const days = this.element.querySelector("#validity-days").checked;
    this.daysField.hidden = !days;
    for (const wrap of this.windowFields) wrap.hidden = days;
  }

  showMode() {
    this.eligibleStores.element.hidden = this.mode.value !== "stores";
    this.brandField.hidden = this.mode.value !== "brand";
  }

  /** The body for the API, or null after showing what is wrong. */
  read() {
    const form = this.element;
    const el = form.elements;
    clearErrors(form);
    const caps = {};
    for (const [name, unit] of CAPS) {
      const input = el[`caps.${name}`];
      const value = unit === "money" ? yuanToFen(input.value) : wholeNumber(input.value);
      if (Number.isNaN(value)) return localError(form, input.name, unit === "money" ? "campaigns.need_yuan" : "campaigns.need_whole");
      caps[name] = value;
    }
    const channels = [...form.querySelectorAll("[data-channel]")].filter((box) => box.checked).map((box) => box.value);
    const common = {
      name: el.name.value,
      caps,
      channels,
      visit_trigger: el.visit_trigger.value,
      active: el.active.checked,
    };
    if (this.offer) return common;

    const body = { ...common, kind: this.kind.value };
    const moneyOf = (name, required) => {
      const value = yuanToFen(el[name].value);
      if (Number.isNaN(value)) return localError(form, name, "campaigns.need_yuan") ?? false;
      if (required || value !== null) body[name] = value;
      return true;
    };
    if (body.kind === "amount_off" && !moneyOf("amount_off_fen", true)) return null;
    if (body.kind === "percent_off") {
      const percent = wholeNumber(el.percent_off.value);
      if (Number.isNaN(percent)) return localError(form, "percent_off", "campaigns.need_whole");
      body.percent_off = percent;
      if (!moneyOf("max_off_fen", true)) return null;
    }
    if (body.kind === "gift") {
      body.gift_item = el.gift_item.value.trim() || null;
      if (!moneyOf("gift_value_fen", false)) return null;
    }
    const spend = yuanToFen(el.min_spend_fen.value);
    if (Number.isNaN(spend)) return localError(form, "min_spend_fen", "campaigns.need_yuan");
    body.min_spend_fen = spend ?? 0;
    const tz = this.campaign.timezone;
    if (form.querySelector("#validity-days").checked) {
      const days = wholeNumber(el["validity.days"].value);
      if (Number.isNaN(days) || days === null) return localError(form, "validity.days", "campaigns.need_whole");
      body.validity = { days };
    } else {
      const starts = zonedToUnix(el["validity.starts_at"].value, tz);
      if (starts === null) return localError(form, "validity.starts_at", "campaigns.need_time");
      const ends = zonedToUnix(el["validity.ends_at"].value, tz);
      if (ends === null) return localError(form, "validity.ends_at", "campaigns.need_time");
      body.validity = { starts_at: starts, ends_at: ends };
    }
    const mode = this.mode.value;
    body.eligible = { mode };
    if (mode === "stores") body.eligible.stores = this.eligibleStores.values();
    if (mode === "brand") body.eligible.brand = this.brand.value || null;
    if (this.program.value) body.membership_program = this.program.value;
    return body;
  }

  async submit() {
    const body = this.read();
    if (!body) return;
    const cid = encodeURIComponent(this.campaign.id);
    const save = this.element.querySelector("#offer-save");
    save.disabled = true;
    try {
      if (this.offer) await api("PATCH", `/api/campaigns/${cid}/offers/${encodeURIComponent(this.offer.id)}`, body);
      else await api("POST", `/api/campaigns/${cid}/offers`, body);
    } catch (error) {
      save.disabled = false;
      showFieldError(this.element, error);
      return;
    }
    await this.saved();
  }
}

