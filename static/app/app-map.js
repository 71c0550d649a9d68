// The map view: the shopper's position, the stores nearby (GET /api/stores/nearby) with their
// fences, open or closed, and the creatures nearby (GET /api/game/spawns, the server's
// sprites). The same stores and creatures are listed under the map (the way without a mouse).
// Maps come from the console's map.js (createMap, fenceLayer, removeMap).
import { api, ApiError, errorText } from "../js/api.js";
import { label, t } from "../js/i18n.js";
import { createMap, fenceLayer, removeMap } from "../console/map.js";

const L = window.L;
const NEARBY_RADIUS_M = 1000;
const REFRESH_AFTER_M = 100; // ask for the stores again after moving this far
const LISTED_CREATURES = 10; // the nearest ones (the server answers nearest first)
const LISTED_STORES = 8; // stores listed under the map before "Show all"
const names = new Map(); // store id -> name, for the "you entered" notices

/** A store's name for a notice: from the stores seen nearby, else from the fences the
 *  shopper is in (GET /api/location/inside), else its id. */
export async function storeName(id) {
  if (names.has(id)) return names.get(id);
  try {
    const { items } = await api("GET", "/api/location/inside");
    for (const item of items) if (item.store) names.set(item.store_id, item.store.name);
  } catch {
    // The id is shown instead.
  }
  return names.get(id) || id;
}

function metres(a, b) {
  const k = Math.cos(((a.lat + b.lat) / 2) * (Math.PI / 180)) * 111_320;
  return Math.hypot((a.lat - b.lat) * 111_320, (a.lon - b.lon) * k);
}

export async function show(view, { state }) {
  const section = document.createElement("section");
  section.className = "map-view";
  section.setAttribute("aria-labelledby", "map-title");
  const heading = label("h2", "app.map.title", null, { id: "map-title", class: "visually-hidden" });
  const mapBox = document.createElement("div");
  mapBox.id = "app-map";
  mapBox.setAttribute("role", "region");
  mapBox.setAttribute("data-i18n-attr", "aria-label:app.map.label");
  mapBox.setAttribute("aria-label", t("app.map.label"));
  const waiting = label("p", "app.map.waiting", null, { id: "map-waiting" });
  const storesTitle = label("h3", "app.map.stores");
  const storeList = document.createElement("ul");
  storeList.id = "store-list";
  storeList.className = "plain-list";
  const spawnsTitle = label("h3", "app.map.creatures");
  const spawnList = document.createElement("ul");
  spawnList.id = "spawn-list";
  spawnList.className = "plain-list";
  const spawnNote = document.createElement("p");
  section.append(heading, waiting, mapBox, storesTitle, storeList, spawnsTitle, spawnNote, spawnList);
  view.replaceChildren(section);

  const map = await createMap(mapBox, { zoom: 16 });
  const fences = L.layerGroup().addTo(map);
  const creatures = L.layerGroup().addTo(map);
  let me = null;
  let meRing = null;
  let storesAt = null;
  let gone = false;

  const showStores = async (fix) => {
    storesAt = fix;
    let page;
    try {
      page = await api("GET", `/api/stores/nearby?lat=${fix.lat}&lon=${fix.lon}&radius_m=${NEARBY_RADIUS_M}&limit=50`);
    } catch (error) {
      storeList.replaceChildren(label("li", "app.map.error", { message: errorText(error) }));
      return;
    }
    if (gone) return;
    fences.clearLayers();
    storeList.replaceChildren();
    for (const store of page.items) {
      names.set(store.id, store.name);
      const colour = store.open_now ? "#1b7f3b" : "#6b7280";
      fences.addLayer(fenceLayer(store, { color: colour, weight: 2, fillOpacity: 0.15, interactive: false }));
      const pin = L.circleMarker([store.lat, store.lon], { radius: 6, color: colour, fillOpacity: 0.9 });
      pin.bindTooltip(store.name);
      fences.addLayer(pin);
      const item = document.createElement("li");
      item.dataset.storeId = store.id;
      const name = document.createElement("strong");
      name.textContent = store.name;
      item.append(
        name,
        document.createTextNode(" "),
        label("span", store.open_now ? "app.map.open" : "app.map.closed", null, {
          class: store.open_now ? "badge open" : "badge closed",
        }),
        document.createTextNode(" "),
        label("span", "app.map.distance", { m: Math.round(store.distance_m) }),
      );
      // The nearest few are listed; the rest wait behind "Show all" (a street has dozens).
      item.hidden = storeList.children.length >= LISTED_STORES;
      storeList.append(item);
    }
    if (!page.items.length) storeList.append(label("li", "app.map.no_stores"));
    if (page.items.length > LISTED_STORES) {
      const more = label("button", "app.map.all_stores", { count: page.items.length }, { type: "button", id: "store-list-all" });
      more.addEventListener("click", () => {
        for (const item of storeList.children) item.hidden = false;
        more.parentElement.remove();
      });
      const holder = document.createElement("li");
      holder.append(more);
      storeList.append(holder);
    }
    mapBox.dataset.stores = String(page.items.length);
  };

  const showSpawns = async () => {
    let answer;
    try {
      answer = await api("GET", "/api/game/spawns");
    } catch (error) {
      if (gone) return;
      const noPosition = error instanceof ApiError && error.status === 409;
      spawnNote.replaceChildren(label("span", noPosition ? "app.map.no_position" : "app.map.error", { message: errorText(error) }));
      return;
    }
    if (gone) return;
    creatures.clearLayers();
    spawnList.replaceChildren();
    spawnNote.replaceChildren();
    for (const spawn of answer.spawns) {
      if (spawn.caught) continue;
      const icon = L.icon({ iconUrl: spawn.sprite_url, iconSize: [40, 40], className: "creature" });
      creatures.addLayer(L.marker([spawn.lat, spawn.lon], { icon, alt: spawn.name, title: spawn.name, keyboard: false }));
      if (spawnList.children.length >= LISTED_CREATURES) continue; // the map shows them all
      const item = document.createElement("li");
      const sprite = document.createElement("img");
      sprite.src = spawn.sprite_url;
      sprite.alt = "";
      sprite.width = 32;
      sprite.height = 32;
      item.append(sprite, document.createTextNode(` ${spawn.name} `),
        label("span", `app.rarity.${spawn.rarity}`, null, { class: `badge ${spawn.rarity}` }),
        document.createTextNode(" "),
        label("span", "app.map.distance", { m: Math.round(spawn.distance_m) }));
      spawnList.append(item);
    }
    if (!spawnList.children.length) spawnList.append(label("li", "app.map.no_creatures"));
  };

  const place = (fix) => {
    waiting.hidden = true;
    const at = [fix.lat, fix.lon];
    if (!me) {
      meRing = L.circle(at, { radius: fix.accuracy_m, color: "#0b5cad", weight: 1, fillOpacity: 0.1, interactive: false }).addTo(map);
      me = L.circleMarker(at, { radius: 8, color: "#ffffff", weight: 3, fillColor: "#0b5cad", fillOpacity: 1 }).addTo(map);
      me.bindTooltip(t("app.map.you"));
      map.setView(at, 16);
    } else {
      me.setLatLng(at);
      meRing.setLatLng(at).setRadius(fix.accuracy_m);
    }
    mapBox.dataset.position = `${fix.lat},${fix.lon}`;
    if (!storesAt || metres(storesAt, fix) > REFRESH_AFTER_M) showStores(fix);
  };

  if (state.fix) place(state.fix);
  const unlisten = state.listen((kind, data) => {
    if (kind === "fix") place(data);
    if (kind === "sent") showSpawns();
  });
  if (state.fix) showSpawns();
  return () => {
    gone = true;
    unlisten();
    removeMap(map);
  };
}
