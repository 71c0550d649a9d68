// A campaign's targets: cities, brands and stores, picked from searchable lists and on a map
// (click a store's marker to add or remove it). Every pick on the map can also be made in the
// stores list, with the keyboard.
import { api } from "../js/api.js";
import { label, t } from "../js/i18n.js";
import { createMap, fenceLayer, removeMap } from "./map.js";

const L = window.L;
const SHOWN = 60; // options drawn at once in a list; typing narrows the rest down
const CLUSTER_FROM = 300; // stores on the map before markers are clustered

/** Every store of the catalogue (paged through GET /api/stores, 500 at a time). */
export async function loadStores() {
  const stores = [];
  let cursor = null;
  do {
    const query = new URLSearchParams({ limit: "500" });
    if (cursor) query.set("cursor", cursor);
    const page = await api("GET", `/api/stores?${query}`);
    stores.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return stores;
}

/** A searchable multi-select: a filter box over a list of checkboxes, the chosen ones first.
 *  `name` is the API field it fills (a server error about it shows after the list). */
export class ChoiceList {
  constructor({ name, legendKey, items, selected = [], onChange = () => {} }) {
    this.items = items; // [{ value, text }]
    this.byValue = new Map(items.map((item) => [item.value, item]));
    this.chosen = new Set(selected);
    this.onChange = onChange;
    const id = `pick-${name.replace(/[^\w-]+/g, "-")}`;
    this.element = document.createElement("fieldset");
    this.element.className = "choice-list";
    this.element.name = name;
    this.element.id = id;
    this.filter = document.createElement("input");
    this.filter.type = "search";
    this.filter.id = `${id}-filter`;
    this.filter.setAttribute("autocomplete", "off");
    this.filter.addEventListener("input", () => this.draw());
    this.count = label("p", "campaigns.picked", { count: this.chosen.size }, { class: "hint", "aria-live": "polite" });
    this.list = document.createElement("ul");
    this.list.className = "choice-options";
    this.more = document.createElement("p");
    this.more.className = "hint";
    this.element.append(
      label("legend", legendKey),
      label("label", "campaigns.filter_list", null, { for: this.filter.id }),
      this.filter,
      this.count,
      this.list,
      this.more,
    );
    this.draw();
  }

  values() {
    return [...this.chosen];
  }

  has(value) {
    return this.chosen.has(value);
  }

  /** Choose or drop a value (from the map, say) without telling onChange again. */
  set(value, on) {
    if (on) this.chosen.add(value);
    else this.chosen.delete(value);
    this.draw();
  }

  draw() {
    const words = this.filter.value.trim().toLowerCase();
    const matches = this.items.filter((item) => !words || item.text.toLowerCase().includes(words));
    matches.sort((a, b) => Number(this.chosen.has(b.value)) - Number(this.chosen.has(a.value)));
    const shown = matches.slice(0, SHOWN);
    this.list.replaceChildren(
      ...shown.map((item) => {
        const row = document.createElement("li");
        const box = document.createElement("input");
        box.type = "checkbox";
        box.id = `${this.element.id}-${this.items.indexOf(item)}`;
        box.value = item.value;
        box.checked = this.chosen.has(item.value);
        box.addEventListener("change", () => {
          if (box.checked) this.chosen.add(item.value);
          else this.chosen.delete(item.value);
          this.updateCount();
          this.onChange(item.value, box.checked);
        });
        const text = document.createElement("label");
        text.htmlFor = box.id;
        text.textContent = item.text;
        row.append(box, text);
        return row;
      }),
    );
    this.updateCount();
    if (matches.length > shown.length) {
      this.more.dataset.i18n = "campaigns.list_more";
      this.more.dataset.i18nParams = JSON.stringify({ shown: shown.length, total: matches.length });
      this.more.textContent = t("campaigns.list_more", { shown: shown.length, total: matches.length });
      this.more.hidden = false;
    } else {
      this.more.hidden = true;
    }
    if (!this.items.length) this.list.replaceChildren(label("li", "campaigns.list_empty"));
  }

  updateCount() {
    this.count.dataset.i18nParams = JSON.stringify({ count: this.chosen.size });
    this.count.textContent = t("campaigns.picked", { count: this.chosen.size });
  }
}

/** The targets part of the campaign form. `value()` is the API's {cities, brands, stores}. */
export class TargetsPicker {
  constructor(stores, targets = { cities: [], brands: [], stores: [] }) {
    this.stores = stores;
    this.markers = new Map();
    this.fences = new Map(); // store id -> its fence on the map, for the picked stores
    const distinct = (key) => [...new Set(stores.map((s) => s[key]).filter(Boolean))].sort();
    const plain = (values) => values.map((value) => ({ value, text: value }));
    const refresh = () => this.restyle();
    this.cities = new ChoiceList({
      name: "targets.cities",
      legendKey: "campaigns.targets_cities",
      items: plain([...new Set([...distinct("city"), ...targets.cities])]),
      selected: targets.cities,
      onChange: refresh,
    });
    this.brands = new ChoiceList({
      name: "targets.brands",
      legendKey: "campaigns.targets_brands",
      items: plain([...new Set([...distinct("brand"), ...targets.brands])]),
      selected: targets.brands,
      onChange: refresh,
    });
    this.storeList = new ChoiceList({
      name: "targets.stores",
      legendKey: "campaigns.targets_stores",
      items: [
        ...stores.map((s) => ({ value: s.id, text: `${s.name} (${s.id}) · ${s.city} · ${s.brand}` })),
        // A target deleted from the catalogue since: listed, so that it can be dropped.
        ...targets.stores.filter((id) => !stores.some((s) => s.id === id)).map((id) => ({ value: id, text: t("campaigns.store_gone", { id }) })),
      ],
      selected: targets.stores,
      onChange: refresh,
    });

    this.element = document.createElement("fieldset");
    this.element.className = "targets";
    this.element.name = "targets";
    this.mapBox = document.createElement("div");
    this.mapBox.className = "pick-map";
    this.mapBox.setAttribute("role", "region");
    this.mapBox.setAttribute("aria-label", t("campaigns.map_label"));
    this.mapBox.setAttribute("data-i18n-attr", "aria-label:campaigns.map_label");
    const lists = document.createElement("div");
    lists.className = "target-lists";
    lists.append(this.cities.element, this.brands.element);
    this.element.append(
      label("legend", "campaigns.targets"),
      label("p", "campaigns.targets_hint", null, { class: "hint" }),
      lists,
      label("p", "campaigns.map_hint", null, { class: "hint", id: "pick-map-hint" }),
      this.mapBox,
      this.storeList.element,
    );
  }

  value() {
    return { cities: this.cities.values(), brands: this.brands.values(), stores: this.storeList.values() };
  }

  /** Draw the map once the picker is in the document (Leaflet measures its box). */
  async drawMap() {
    const located = this.stores.filter((s) => Number.isFinite(s.lat) && Number.isFinite(s.lon));
    this.map = await createMap(this.mapBox);
    const group = located.length > CLUSTER_FROM ? L.markerClusterGroup({ disableClusteringAtZoom: 16 }) : L.layerGroup();
    for (const store of located) {
      const marker = L.marker([store.lat, store.lon], {
        icon: L.divIcon({ className: "pick-marker", iconSize: [22, 22] }),
        title: t("campaigns.marker_title", { name: store.name, id: store.id }),
        riseOnHover: true,
      });
      const toggle = () => {
        this.storeList.set(store.id, !this.storeList.has(store.id));
        this.restyle();
      };
      marker.on("click", toggle);
      // A marker is a focusable button (Leaflet's `keyboard` option): Enter or Space toggles it.
      marker.on("keypress", (event) => {
        const key = event.originalEvent.key;
        if (key !== "Enter" && key !== " ") return;
        event.originalEvent.preventDefault();
        toggle();
      });
      marker.on("add", () => this.styleMarker(store));
      this.markers.set(store.id, marker);
      group.addLayer(marker);
    }
    group.addTo(this.map);
    this.fenceGroup = L.layerGroup().addTo(this.map);
    if (located.length) {
      this.map.fitBounds(L.latLngBounds(located.map((s) => [s.lat, s.lon])).pad(0.2), { maxZoom: 16 });
    }
    this.restyle();
  }

  styleMarker(store) {
    const element = this.markers.get(store.id)?.getElement();
    if (!element) return;
    const picked = this.storeList.has(store.id);
    const covered = this.cities.has(store.city) || this.brands.has(store.brand);
    element.classList.toggle("is-selected", picked);
    element.classList.toggle("is-covered", !picked && covered);
    element.dataset.storeId = store.id;
    element.setAttribute("aria-pressed", String(picked));
  }

  restyle() {
    for (const store of this.stores) this.styleMarker(store);
    if (!this.fenceGroup) return;
    // The picked stores' fences, drawn under the markers: where the campaign's visits count.
    const picked = new Set(this.storeList.values());
    for (const [id, layer] of this.fences) {
      if (!picked.has(id)) {
        this.fenceGroup.removeLayer(layer);
        this.fences.delete(id);
      }
    }
    for (const store of this.stores) {
      if (!picked.has(store.id) || this.fences.has(store.id) || !store.fence) continue;
      const layer = fenceLayer(store, { color: "#0b3f78", weight: 2, fillOpacity: 0.15, interactive: false });
      this.fences.set(store.id, layer);
      this.fenceGroup.addLayer(layer);
    }
  }

  teardown() {
    if (this.map) removeMap(this.map);
  }
}
