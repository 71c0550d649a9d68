// The console's stores view. #stores: a map of every store (clustered; fences of the stores in
// view when zoomed in), the list with filters (city, brand, open now), bulk import and the
// GeoJSON export. #stores/<id>: one store's page with its hours and its fence editor
// (stores-page.js).
import { api, apiFile, errorText, saveFile, token } from "../js/api.js";
import { label, t } from "../js/i18n.js";
import { importForm } from "./importer.js";
import { createMap, removeMap, storesLayer } from "./map.js";
import { showStore, tableWrap } from "./stores-page.js";

const PAGE_SIZE = 50;

export async function show(view, ctx) {
  if (ctx.args.length) return showStore(view, ctx, ctx.args[0]);
  return showOverview(view, ctx);
}

async function showOverview(view, ctx) {
  view.append(label("h2", "stores.title"));
  const layout = document.createElement("div");
  layout.className = "stores-layout";
  view.append(layout);

  // The map of every store.
  const mapCard = section("stores-map-title", "stores.map.title");
  const mapElement = document.createElement("div");
  mapElement.id = "stores-map";
  mapElement.setAttribute("role", "region"); // a labelled landmark, as the other maps
  mapElement.setAttribute("data-i18n-attr", "aria-label:stores.map.label");
  mapElement.setAttribute("aria-label", t("stores.map.label"));
  const mapStatus = document.createElement("p");
  mapStatus.id = "stores-map-status";
  mapStatus.setAttribute("role", "status");
  mapCard.append(label("p", "stores.map.hint", null, { class: "hint" }), mapElement, mapStatus);

  // The list.
  const listCard = section("stores-list-title", "stores.list.title");
  const list = storeList(ctx);
  listCard.append(list.element);

  // Import and export.
  const importCard = section("stores-import-title", "stores.import.title");
  const exportCard = section("stores-export-title", "stores.export.title");
  layout.append(mapCard, listCard, importCard, exportCard);

  const map = await createMap(mapElement, { zoom: 11 });
  let layer = null;
  let gone = false; // the view was left: answers that come later change nothing
  const loadPins = async ({ fit = false } = {}) => {
    mapStatus.replaceChildren(label("span", "stores.map.loading"));
    const started = performance.now();
    let answer;
    try {
      answer = await api("GET", "/api/stores/map");
    } catch (error) {
      mapStatus.textContent = errorText(error);
      mapStatus.classList.add("form-error");
      return;
    }
    if (gone) return;
    mapStatus.classList.remove("form-error");
    const pins = answer.items;
    if (!layer) {
      layer = storesLayer(map, pins, {
        onSelect: (pin) => ctx.navigate("stores", pin.id),
        label: (pin) => t("stores.map.pin", { name: pin.name, city: pin.city }),
      });
    } else layer.setPins(pins);
    if (fit) layer.fitAll();
    // How long the pins took to fetch and place (shown to nobody; read by the demo's timing).
    mapElement.dataset.loadMs = String(Math.round(performance.now() - started));
    mapElement.dataset.stores = String(pins.length);
    mapStatus.replaceChildren(label("span", "stores.map.count", { count: pins.length }));
  };

  importCard.append(
    importForm({
      onImported: async () => {
        await Promise.all([loadPins({ fit: true }), list.reload()]);
      },
    }),
  );
  exportCard.append(exportButton(list));

  await Promise.all([loadPins({ fit: true }), list.reload()]);
  return () => {
    gone = true;
    // The map goes once the layer's markers are in (see storesLayer).
    Promise.resolve(layer?.remove()).then(() => removeMap(map));
  };
}

function section(id, key) {
  const card = document.createElement("section");
  card.className = "card";
  card.setAttribute("aria-labelledby", id);
  card.append(label("h3", key, null, { id }));
  return card;
}

/** The paged list of stores with its filter form; `filters()` are the form's current values. */
function storeList() {
  const element = document.createElement("div");
  const form = document.createElement("form");
  form.className = "stores-filters";
  form.setAttribute("role", "search");
  form.setAttribute("data-i18n-attr", "aria-label:stores.list.filters");
  form.setAttribute("aria-label", t("stores.list.filters"));
  const city = input("stores-city", "city", "text", "stores.list.city");
  const brand = input("stores-brand", "brand", "text", "stores.list.brand");
  const openWrap = document.createElement("div");
  openWrap.className = "field checkbox";
  const open = document.createElement("input");
  Object.assign(open, { type: "checkbox", id: "stores-open", name: "open_now" });
  openWrap.append(open, label("label", "stores.list.open_now", null, { for: "stores-open" }));
  const apply = label("button", "stores.list.apply", null, { type: "submit" });
  const alert = document.createElement("p");
  alert.className = "form-error";
  alert.setAttribute("role", "alert");
  alert.hidden = true;
  form.append(city.wrap, brand.wrap, openWrap, apply);

  const status = document.createElement("p");
  status.id = "stores-list-status";
  status.setAttribute("role", "status");
  const wrap = tableWrap("stores.list.title");
  const table = document.createElement("table");
  table.id = "stores-table";
  const caption = label("caption", "stores.list.caption");
  const head = document.createElement("tr");
  for (const key of ["stores.col.name", "stores.col.brand", "stores.col.city", "stores.col.address", "stores.col.open"]) {
    head.append(label("th", key, null, { scope: "col" }));
  }
  const thead = document.createElement("thead");
  thead.append(head);
  const tbody = document.createElement("tbody");
  table.append(caption, thead, tbody);
  wrap.append(table);
  const more = label("button", "stores.list.more", null, { type: "button", class: "more" });
  more.hidden = true;
  element.append(form, alert, status, wrap, more);

  let cursor = null;
  let shown = 0;
  let total = null;
  let turn = 0;
  const filters = () => ({ city: city.input.value.trim(), brand: brand.input.value.trim(), open_now: open.checked });

  const fetchPage = async (reset) => {
    const mine = ++turn;
    const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
    const wanted = filters();
    if (wanted.city) query.set("city", wanted.city);
    if (wanted.brand) query.set("brand", wanted.brand);
    if (wanted.open_now) query.set("open_now", "true");
    if (!reset && cursor) query.set("cursor", cursor);
    let page;
    try {
      page = await api("GET", `/api/stores?${query}`);
    } catch (error) {
      alert.textContent = errorText(error);
      alert.hidden = false;
      return;
    }
    if (mine !== turn) return;
    alert.hidden = true;
    if (reset) {
      tbody.replaceChildren();
      shown = 0;
    }
    for (const store of page.items) tbody.append(storeRow(store));
    shown += page.items.length;
    total = page.total;
    cursor = page.next_cursor;
    more.hidden = !cursor;
    if (!shown) status.replaceChildren(label("span", "stores.list.none"));
    else if (total === null) status.replaceChildren(label("span", "stores.list.shown", { shown }));
    else status.replaceChildren(label("span", "stores.list.shown_of", { shown, total }));
  };

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    fetchPage(true);
  });
  more.addEventListener("click", async () => {
    const first = tbody.children.length;
    await fetchPage(false);
    // Keep the keyboard where the new rows start.
    tbody.children[first]?.querySelector("a")?.focus();
  });
  return { element, filters, reload: () => fetchPage(true) };
}

function storeRow(store) {
  const row = document.createElement("tr");
  row.dataset.storeId = store.id;
  const name = document.createElement("td");
  const link = document.createElement("a");
  link.href = `#stores/${encodeURIComponent(store.id)}`;
  link.textContent = store.name;
  name.append(link);
  row.append(name);
  for (const text of [store.brand, store.city, store.address]) {
    const cell = document.createElement("td");
    cell.textContent = text;
    row.append(cell);
  }
  row.append(label("td", store.open_now ? "stores.open.yes" : "stores.open.no"));
  return row;
}

function input(id, name, type, key) {
  const wrap = document.createElement("div");
  wrap.className = "field";
  const el = document.createElement("input");
  Object.assign(el, { id, name, type });
  el.setAttribute("autocomplete", "off");
  wrap.append(label("label", key, null, { for: id }), el);
  return { wrap, input: el };
}

/** The GeoJSON export: fetched with the tab's token (never in a URL), saved through an
 *  object URL on an <a download>; the list's city and brand filters apply. */
function exportButton(list) {
  const wrap = document.createElement("div");
  const note = label("p", "stores.export.hint", null, { class: "hint" });
  const button = label("button", "stores.export.download", null, { type: "button", id: "stores-export" });
  const status = document.createElement("p");
  status.setAttribute("role", "status");
  button.addEventListener("click", async () => {
    const { city, brand } = list.filters();
    const query = new URLSearchParams();
    if (city) query.set("city", city);
    if (brand) query.set("brand", brand);
    status.replaceChildren(label("span", "stores.export.working"));
    status.classList.remove("form-error");
    try {
      const response = await apiFile(`/api/stores/export.geojson?${query}`, "application/geo+json");
      const name = city || brand ? `stores-${[city, brand].filter(Boolean).join("-")}` : "stores";
      saveFile(await response.blob(), `${name}.geojson`);
      status.replaceChildren(label("span", "stores.export.done"));
    } catch (error) {
      status.textContent = errorText(error);
      status.classList.add("form-error");
    }
  });
  wrap.append(note, button, status);
  return wrap;
}
