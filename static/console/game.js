// A campaign's game (PUT/GET /api/campaigns/<id>/game): the species table with rarity and
// weight, spawn densities on the street and in stores, how much stores favour rare species,
// and the offer a catch in a store earns. A table shows what the weights mean: the chance of
// each rarity on the street and in a store.
import { api, clearErrors, errorText } from "../js/api.js";
import { label, t } from "../js/i18n.js";
import { field, formAlert, options, showFieldError } from "./campaign-util.js";
import { offerHeadline } from "./offers.js";

const RARITIES = ["common", "rare", "epic", "legendary"];
const STARTER = [
  { id: "lantern-fox", name: "Lantern Fox", rarity: "common", weight: 60, points: null },
  { id: "jade-koi", name: "Jade Koi", rarity: "rare", weight: 25, points: null },
  { id: "golden-qilin", name: "Golden Qilin", rarity: "legendary", weight: 5, points: null },
];

/** The chance of each rarity on the street and in a store, as the spawner draws them
 *  (game/spawns.py: legendary species never spawn on the street; in stores every species but
 *  the common ones has its weight multiplied by the boost). */
export function rarityChances(species, boost) {
  const street = {};
  const store = {};
  let streetTotal = 0;
  let storeTotal = 0;
  for (const rarity of RARITIES) street[rarity] = store[rarity] = 0;
  for (const s of species) {
    const weight = Number(s.weight);
    if (!(weight > 0) || !(s.rarity in street)) continue;
    if (s.rarity !== "legendary") {
      street[s.rarity] += weight;
      streetTotal += weight;
    }
    const boosted = weight * (s.rarity === "common" ? 1 : Number(boost) || 1);
    store[s.rarity] += boosted;
    storeTotal += boosted;
  }
  const share = (part, total) => (total > 0 ? (part / total) * 100 : 0);
  return RARITIES.map((rarity) => ({ rarity, street: share(street[rarity], streetTotal), store: share(store[rarity], storeTotal) }));
}

export class GameSetup {
  constructor(campaign) {
    this.campaign = campaign;
    this.offers = [];
    this.rows = [];
    const form = (this.element = document.createElement("form"));
    form.className = "card game-setup";
    form.id = "game-form";
    form.noValidate = true;
    form.setAttribute("aria-labelledby", "game-title");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    form.addEventListener("input", () => this.drawChances());
    form.addEventListener("change", () => this.drawChances());
  }

  async load(offers) {
    this.offers = offers;
    let config = null;
    let missing = false;
    try {
      config = await api("GET", `/api/campaigns/${encodeURIComponent(this.campaign.id)}/game`);
    } catch (error) {
      if (error.code !== "game_not_found") {
        this.draw(null);
        this.alert.textContent = errorText(error);
        this.alert.hidden = false;
        return;
      }
      missing = true;
    }
    this.draw(config, missing);
  }

  draw(config, missing = false) {
    const form = this.element;
    const species = config?.species || STARTER;
    this.table = document.createElement("tbody");
    const head = document.createElement("tr");
    for (const key of ["campaigns.game.col_id", "campaigns.game.col_name", "campaigns.game.col_rarity", "campaigns.game.col_weight", "campaigns.game.col_points", "campaigns.game.col_remove"]) {
      head.append(label("th", key, null, { scope: "col" }));
    }
    const thead = document.createElement("thead");
    thead.append(head);
    const table = document.createElement("table");
    table.id = "species-table";
    table.append(label("caption", "campaigns.game.species_caption"), thead, this.table);
    const wrap = document.createElement("div");
    wrap.className = "table-wrap";
    wrap.tabIndex = 0;
    wrap.setAttribute("role", "region");
    wrap.setAttribute("aria-label", t("campaigns.game.species_caption"));
    wrap.append(table);
    const speciesBox = document.createElement("fieldset");
    speciesBox.name = "species";
    const add = label("button", "campaigns.game.add_species", null, { type: "button", id: "species-add" });
    add.addEventListener("click", () => {
      this.addRow({ id: "", name: "", rarity: "common", weight: 10, points: null });
      this.renumber();
      this.table.lastElementChild.querySelector("input").focus();
    });
    speciesBox.append(label("legend", "campaigns.game.species"), wrap, add);

    const street = document.createElement("fieldset");
    street.append(
      label("legend", "campaigns.game.street"),
      field("density_per_cell", "campaigns.game.density", { type: "number", value: config?.density_per_cell ?? 1, hint: "campaigns.game.density_hint", attrs: { min: "0", max: "20", step: "0.1" } }),
    );
    const stores = document.createElement("fieldset");
    stores.append(
      label("legend", "campaigns.game.stores"),
      field("store_density", "campaigns.game.store_density", { type: "number", value: config?.store_density ?? 2, hint: "campaigns.game.store_density_hint", attrs: { min: "0", max: "20", step: "0.1" } }),
      field("store_rarity_boost", "campaigns.game.boost", { type: "number", value: config?.store_rarity_boost ?? 5, hint: "campaigns.game.boost_hint", attrs: { min: "1", max: "100", step: "0.1" } }),
    );
    const places = document.createElement("div");
    places.className = "game-places";
    places.append(street, stores);

    this.chances = document.createElement("div");
    this.chances.className = "table-wrap";
    this.chances.id = "rarity-chances";
    this.chances.tabIndex = 0;
    this.chances.setAttribute("role", "region");
    this.chances.setAttribute("aria-label", t("campaigns.game.chances_caption"));

    const offer = field("offer_id", "campaigns.game.offer", { tag: "select", hint: "campaigns.game.offer_hint" });
    this.offerSelect = offer.querySelector("select");
    this.offerValue = config?.offer_id || "";
    this.fillOffers();
    const seed = field("seed", "campaigns.game.seed", { value: config?.seed || "", hint: "campaigns.game.seed_hint", attrs: { autocomplete: "off", maxlength: "64" } });

    this.alert = formAlert();
    this.done = document.createElement("p");
    this.done.setAttribute("role", "status");
    this.done.className = "saved";
    const save = label("button", "campaigns.game.save", null, { type: "submit", id: "game-save" });
    form.replaceChildren(
      label("h3", "campaigns.game.title", null, { id: "game-title" }),
      missing ? label("p", "campaigns.game.none_yet", null, { class: "hint" }) : document.createTextNode(""),
      speciesBox,
      places,
      this.chances,
      offer,
      seed,
      this.alert,
      save,
      this.done,
    );
    this.rows = [];
    for (const s of species) this.addRow(s);
    this.renumber();
    if (this.campaign.status === "ended") for (const el of form.querySelectorAll("input, select, button")) el.disabled = true;
  }

  addRow(s) {
    const row = document.createElement("tr");
    const cell = (child) => {
      const td = document.createElement("td");
      td.append(child);
      return td;
    };
    const input = (part, value, attrs = {}) => {
      const el = document.createElement("input");
      el.dataset.part = part;
      el.value = value ?? "";
      for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
      return el;
    };
    const rarity = document.createElement("select");
    rarity.dataset.part = "rarity";
    options(rarity, RARITIES.map((r) => [r, `campaigns.rarity.${r}`]), s.rarity);
    const remove = label("button", "campaigns.game.remove", null, { type: "button" });
    remove.addEventListener("click", () => {
      row.remove();
      this.renumber();
      this.drawChances();
    });
    row.append(
      cell(input("id", s.id, { autocomplete: "off", maxlength: "32", spellcheck: "false" })),
      cell(input("name", s.name, { autocomplete: "off", maxlength: "60" })),
      cell(rarity),
      cell(input("weight", s.weight, { type: "number", min: "0", step: "any" })),
      cell(input("points", s.points, { type: "number", min: "0", step: "1" })),
      cell(remove),
    );
    this.table.append(row);
  }

  /** Name each row's inputs by the API's path (species[2].weight), so errors land there, and
   *  label them by row for screen readers. */
  renumber() {
    [...this.table.children].forEach((row, index) => {
      for (const el of row.querySelectorAll("[data-part]")) {
        const part = el.dataset.part;
        el.name = `species[${index}].${part}`;
        el.id = `species-${index}-${part}`;
        el.setAttribute("aria-label", t(`campaigns.game.col_${part}`) + ` ${index + 1}`);
      }
      row.querySelector("button").setAttribute("aria-label", t("campaigns.game.remove_row", { row: index + 1 }));
    });
    this.drawChances();
  }

  species() {
    return [...this.table.children].map((row) => {
      const get = (part) => row.querySelector(`[data-part=${part}]`).value.trim();
      const points = get("points");
      return {
        id: get("id"),
        name: get("name"),
        rarity: get("rarity"),
        weight: get("weight") === "" ? null : Number(get("weight")),
        points: points === "" ? null : Number(points),
      };
    });
  }

  drawChances() {
    if (!this.chances) return;
    const boost = this.element.elements.store_rarity_boost?.value;
    const rows = rarityChances(this.species(), boost);
    const table = document.createElement("table");
    table.id = "chance-table";
    const head = document.createElement("tr");
    for (const key of ["campaigns.game.col_rarity", "campaigns.game.chance_street", "campaigns.game.chance_store"]) head.append(label("th", key, null, { scope: "col" }));
    const thead = document.createElement("thead");
    thead.append(head);
    const tbody = document.createElement("tbody");
    const pct = (value) => `${value.toFixed(1)}%`;
    for (const row of rows) {
      const tr = document.createElement("tr");
      tr.dataset.rarity = row.rarity;
      const th = label("th", `campaigns.rarity.${row.rarity}`, null, { scope: "row" });
      const a = document.createElement("td");
      a.textContent = pct(row.street);
      const b = document.createElement("td");
      b.textContent = pct(row.store);
      tr.append(th, a, b);
      tbody.append(tr);
    }
    table.append(label("caption", "campaigns.game.chances_caption"), thead, tbody);
    this.chances.replaceChildren(table);
  }

  fillOffers() {
    if (!this.offerSelect) return;
    const current = this.offerSelect.value || this.offerValue;
    this.offerSelect.replaceChildren();
    options(this.offerSelect, [["", "campaigns.game.no_offer"]], "");
    for (const offer of this.offers) {
      const game = offer.channels.includes("game");
      const text = game ? `${offer.name} · ${offerHeadline(offer)}` : t("campaigns.game.offer_not_game", { name: offer.name });
      const option = new Option(text, offer.id, false, offer.id === current);
      option.disabled = !game && offer.id !== current;
      this.offerSelect.append(option);
    }
  }

  offersChanged(offers) {
    this.offers = offers;
    this.fillOffers();
  }

  campaignChanged(campaign) {
    this.campaign = campaign;
    if (campaign.status === "ended") for (const el of this.element.querySelectorAll("input, select, button")) el.disabled = true;
  }

  relabel() {
    this.fillOffers();
    this.renumber();
  }

  async submit() {
    const form = this.element;
    clearErrors(form);
    this.done.textContent = "";
    const number = (name) => {
      const value = form.elements[name].value.trim();
      return value === "" ? null : Number(value);
    };
    const body = {
      species: this.species(),
      density_per_cell: number("density_per_cell"),
      store_density: number("store_density"),
      store_rarity_boost: number("store_rarity_boost"),
      offer_id: this.offerSelect.value || null,
    };
    const seed = form.elements.seed.value.trim();
    if (seed) body.seed = seed;
    const save = form.querySelector("#game-save");
    save.disabled = true;
    try {
      const saved = await api("PUT", `/api/campaigns/${encodeURIComponent(this.campaign.id)}/game`, body);
      this.offerValue = saved.offer_id || "";
      this.draw(saved);
      this.done.textContent = t("campaigns.game.saved");
    } catch (error) {
      showFieldError(form, error);
    } finally {
      save.disabled = false;
    }
  }
}
