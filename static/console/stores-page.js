// One store's page (#stores/<id>): what it is, its opening hours in its own time zone, and its
// fence on a map, drawn and edited with Leaflet-Geoman (window.L.PM, documented API: enableDraw,
// enableGlobalCutMode, layer.pm.enable, the pm:create / pm:cut / pm:edit events). The same
// fence can be set without a mouse: a radius for a circle, or the fence's JSON in a textarea.
// Saving sends PATCH /api/stores/<id> {fence}; the server's refusal is drawn on the map (the
// offending ring outlined in red, the message anchored where the server says) and written
// next to the map, naming the field.
import { api, errorText } from "../js/api.js";
import { formatTime, label, language, t } from "../js/i18n.js";
import { createMap, removeMap } from "./map.js";

const L = window.L;
const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const SHAPE_STYLE = { color: "#1d5fa8", weight: 3, fillOpacity: 0.15 };
const ERROR_STYLE = { color: "#c62828", weight: 4, dashArray: "6 4", fill: false, interactive: false };

export async function showStore(view, ctx, storeId) {
  const back = label("a", "stores.page.back", null, { href: "#stores", class: "back" });
  view.append(back);
  let store;
  try {
    store = await api("GET", `/api/stores/${encodeURIComponent(storeId)}`);
  } catch (error) {
    const note = document.createElement("p");
    note.className = "form-error";
    note.setAttribute("role", "alert");
    note.textContent = errorText(error);
    view.append(note);
    return null;
  }
  const heading = document.createElement("h2");
  heading.textContent = store.name;
  heading.id = "store-name";
  view.append(heading);

  const layout = document.createElement("div");
  layout.className = "store-page";
  view.append(layout);
  layout.append(facts(store), hoursCard(store));

  const fenceCard = document.createElement("section");
  fenceCard.className = "card fence-card";
  fenceCard.setAttribute("aria-labelledby", "fence-title");
  fenceCard.append(label("h3", "stores.fence.title", null, { id: "fence-title" }));
  layout.append(fenceCard);
  const editor = await fenceEditor(fenceCard, store);
  return () => editor.remove();
}

function facts(store) {
  const card = document.createElement("section");
  card.className = "card";
  card.setAttribute("aria-labelledby", "store-facts-title");
  card.append(label("h3", "stores.page.facts", null, { id: "store-facts-title" }));
  const list = document.createElement("dl");
  list.className = "facts";
  const zone = store.opening_hours?.tz || Intl.DateTimeFormat().resolvedOptions().timeZone;
  const rows = [
    ["stores.col.brand", store.brand],
    ["stores.col.city", store.city],
    ["stores.col.address", store.address || "—"],
    ["stores.page.id", store.id],
    ["stores.page.point", `${store.lat.toFixed(6)}, ${store.lon.toFixed(6)}`],
    ["stores.page.zone", zone],
  ];
  rows.push(["stores.page.now", formatTime(Date.now() / 1000, zone)]);
  if (store.updated_at) rows.push(["stores.page.updated", formatTime(store.updated_at, zone)]);
  for (const [key, value] of rows) {
    const dd = document.createElement("dd");
    dd.textContent = value;
    list.append(label("dt", key), dd);
  }
  card.append(list);
  return card;
}

/** The week's opening hours as a table, in the store's own time zone. */
function hoursCard(store) {
  const card = document.createElement("section");
  card.className = "card";
  card.setAttribute("aria-labelledby", "store-hours-title");
  card.append(label("h3", "stores.hours.title", null, { id: "store-hours-title" }));
  const hours = store.opening_hours;
  if (!hours) {
    card.append(label("p", "stores.hours.none"));
    return card;
  }
  if (hours.always) {
    card.append(label("p", "stores.hours.always", { zone: hours.tz }));
    return card;
  }
  const table = document.createElement("table");
  table.id = "store-hours";
  table.append(label("caption", "stores.hours.caption", { zone: hours.tz }));
  const head = document.createElement("tr");
  head.append(label("th", "stores.hours.day", null, { scope: "col" }), label("th", "stores.hours.open", null, { scope: "col" }));
  const thead = document.createElement("thead");
  thead.append(head);
  const tbody = document.createElement("tbody");
  for (const day of DAYS) {
    const row = document.createElement("tr");
    row.dataset.day = day;
    row.append(label("th", `stores.day.${day}`, null, { scope: "row" }));
    const ranges = (hours.weekly || {})[day] || [];
    if (ranges.length) {
      const cell = document.createElement("td");
      cell.textContent = ranges.map(([from, to]) => `${from}–${to}`).join(", ");
      row.append(cell);
    } else row.append(label("td", "stores.hours.closed"));
    tbody.append(row);
  }
  table.append(thead, tbody);
  const wrap = tableWrap("stores.hours.title");
  wrap.append(table);
  card.append(wrap);
  if (hours.closed_dates?.length) {
    card.append(label("p", "stores.hours.closed_dates", { dates: hours.closed_dates.join(", ") }));
  }
  return card;
}

/** A wrapper that scrolls a wide table sideways on a phone: focusable (so the keyboard can
 *  scroll it) and named by a catalogue key. */
export function tableWrap(key) {
  const wrap = document.createElement("div");
  wrap.className = "table-wrap";
  wrap.tabIndex = 0;
  wrap.setAttribute("role", "region");
  wrap.setAttribute("data-i18n-attr", `aria-label:${key}`);
  wrap.setAttribute("aria-label", t(key));
  return wrap;
}

// -- the fence editor ----------------------------------------------------------------------

/** A fence as the API takes it, from a Geoman/Leaflet layer (circle or polygon with holes). */
function fenceOf(layer, always) {
  const extra = always ? { always_active: true } : {};
  if (layer instanceof L.Circle) {
    const centre = layer.getLatLng();
    return {
      type: "circle",
      radius_m: Math.round(layer.getRadius()),
      center: [round(centre.lng), round(centre.lat)],
      ...extra,
    };
  }
  const geometry = layer.toGeoJSON(7).geometry; // [lon, lat] rings, closed
  return { type: geometry.type, coordinates: geometry.coordinates, ...extra };
}

function round(value) {
  return Math.round(value * 1e7) / 1e7;
}

/** A Leaflet layer Geoman can edit, from a fence of the API. */
function layerOf(fence, store) {
  if (fence.type === "circle") {
    const [lon, lat] = fence.center || [store.lon, store.lat];
    return L.circle([lat, lon], { radius: fence.radius_m, ...SHAPE_STYLE });
  }
  const ring = (positions) => positions.slice(0, -1).map(([lon, lat]) => [lat, lon]);
  const rings = fence.type === "MultiPolygon"
    ? fence.coordinates.map((polygon) => polygon.map(ring))
    : fence.coordinates.map(ring);
  return L.polygon(rings, SHAPE_STYLE);
}

async function fenceEditor(card, store) {
  const always = Boolean(store.fence?.always_active);
  const mapElement = document.createElement("div");
  mapElement.id = "fence-map";
  mapElement.setAttribute("role", "region"); // a labelled landmark, as the other maps
  mapElement.setAttribute("data-i18n-attr", "aria-label:stores.fence.map_label");
  mapElement.setAttribute("aria-label", t("stores.fence.map_label"));

  const tools = document.createElement("div");
  tools.className = "actions fence-tools";
  const button = (id, key) => label("button", key, null, { type: "button", id });
  const drawCircle = button("fence-draw-circle", "stores.fence.draw_circle");
  const drawPolygon = button("fence-draw-polygon", "stores.fence.draw_polygon");
  const cutHole = button("fence-cut-hole", "stores.fence.cut_hole");
  tools.append(drawCircle, drawPolygon, cutHole);
  const hint = label("p", "stores.fence.hint", null, { class: "hint", id: "fence-hint" });

  const alert = document.createElement("div");
  alert.id = "fence-error";
  alert.className = "form-error";
  alert.setAttribute("role", "alert");
  const status = document.createElement("p");
  status.id = "fence-status";
  status.setAttribute("role", "status");

  // The keyboard way: a radius for a circle, or the fence's JSON.
  const form = document.createElement("form");
  form.className = "fence-form";
  form.noValidate = true;
  const radiusWrap = document.createElement("div");
  radiusWrap.className = "field";
  const radius = document.createElement("input");
  Object.assign(radius, { type: "number", id: "fence-radius", name: "radius_m", min: "20", max: "5000", step: "1" });
  radiusWrap.append(label("label", "stores.fence.radius", null, { for: radius.id }), radius);
  const useCircle = button("fence-use-circle", "stores.fence.use_circle");
  const jsonWrap = document.createElement("div");
  jsonWrap.className = "field";
  const json = document.createElement("textarea");
  Object.assign(json, { id: "fence-json", name: "fence", rows: 6, spellcheck: false });
  jsonWrap.append(label("label", "stores.fence.json", null, { for: json.id }), json);
  const showJson = button("fence-show-json", "stores.fence.show_json");
  const save = label("button", "stores.fence.save", null, { type: "submit", id: "fence-save" });
  const formActions = document.createElement("div");
  formActions.className = "actions";
  formActions.append(showJson, save);
  form.append(radiusWrap, useCircle, jsonWrap, formActions);

  card.append(hint, tools, mapElement, alert, status, form);

  const map = await createMap(mapElement, { center: [store.lat, store.lon], zoom: 17, doubleClickZoom: false });
  // Geoman's own hints ("click to continue drawing") follow the page's language.
  const geomanLanguage = () => map.pm.setLang(language() === "zh-CN" ? "zh" : "en");
  geomanLanguage();
  document.addEventListener("languagechange", geomanLanguage);
  // No snapping: a corner goes where it is clicked (the fence is the only shape here).
  map.pm.setGlobalOptions({ allowSelfIntersection: true, snappable: false, pathOptions: SHAPE_STYLE });
  const storePoint = L.circleMarker([store.lat, store.lon], {
    radius: 6, color: "#222", fillColor: "#f0a30a", fillOpacity: 1, pmIgnore: true, interactive: false,
  }).addTo(map);
  // Geoman's handles (vertices, a circle's centre and radius) are markers without a name:
  // give each one, so that screen readers say what they are.
  map.on("layeradd", (event) => {
    const layer = event.layer;
    if (!(layer instanceof L.Marker) || layer === storePoint || !layer.getElement) return;
    const element = layer.getElement();
    if (element && !element.title && !element.getAttribute("aria-label")) {
      element.setAttribute("aria-label", t("stores.fence.handle"));
    }
  });
  const errors = L.layerGroup().addTo(map);
  // Error outlines are SVG paths (class fence-error-ring), above the canvas-drawn fence.
  const errorRenderer = L.svg({ padding: 0.5 });
  let shape = null;

  const sync = () => {
    if (!shape) return;
    const fence = fenceOf(shape, always);
    json.value = JSON.stringify(fence);
    if (fence.type === "circle") radius.value = String(fence.radius_m);
  };
  const watch = (layer) => {
    layer.on("pm:edit", sync);
    layer.pm.enable({ allowSelfIntersection: true });
  };
  const setShape = (layer, { fit = false } = {}) => {
    if (shape && shape !== layer) shape.remove();
    shape = layer;
    if (!map.hasLayer(layer)) layer.addTo(map);
    watch(layer);
    sync();
    if (fit) map.fitBounds(layer.getBounds(), { padding: [24, 24], maxZoom: 18 });
  };
  const clearErrorMarks = () => {
    errors.clearLayers();
    alert.replaceChildren();
    json.removeAttribute("aria-invalid");
  };

  setShape(layerOf(store.fence, store), { fit: true });

  const startDrawing = (kind) => {
    clearErrorMarks();
    if (shape) shape.pm.disable();
    map.pm.enableDraw(kind, { allowSelfIntersection: true, pathOptions: SHAPE_STYLE });
    status.replaceChildren(label("span", kind === "Circle" ? "stores.fence.drawing_circle" : "stores.fence.drawing_polygon"));
  };
  drawCircle.addEventListener("click", () => startDrawing("Circle"));
  drawPolygon.addEventListener("click", () => startDrawing("Polygon"));
  cutHole.addEventListener("click", () => {
    clearErrorMarks();
    if (!shape || shape instanceof L.Circle) {
      status.replaceChildren(label("span", "stores.fence.cut_needs_polygon"));
      return;
    }
    shape.pm.disable();
    map.pm.enableGlobalCutMode({ allowSelfIntersection: false });
    status.replaceChildren(label("span", "stores.fence.cutting"));
  });
  map.on("pm:create", (event) => {
    setShape(event.layer);
    status.replaceChildren(label("span", "stores.fence.drawn"));
  });
  map.on("pm:cut", (event) => {
    // Geoman replaced the polygon by the cut one: it is the fence now.
    shape = null;
    setShape(event.layer);
    status.replaceChildren(label("span", "stores.fence.cut_done"));
  });
  map.on("pm:drawend", () => {
    if (shape && !shape.pm.enabled()) shape.pm.enable({ allowSelfIntersection: true });
  });
  map.on("pm:globalcutmodetoggled", (event) => {
    if (!event.enabled && shape && !shape.pm.enabled()) shape.pm.enable({ allowSelfIntersection: true });
  });

  // Escape stops drawing or cutting (focus stays on the button that started it).
  card.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    if (!map.pm.globalDrawModeEnabled() && !map.pm.globalCutModeEnabled()) return;
    map.pm.disableDraw();
    map.pm.disableGlobalCutMode();
    status.replaceChildren(label("span", "stores.fence.cancelled"));
  });

  useCircle.addEventListener("click", () => {
    clearErrorMarks();
    const metres = Number(radius.value);
    if (!Number.isFinite(metres) || metres <= 0) {
      alert.replaceChildren(label("p", "stores.fence.bad_radius"));
      return;
    }
    const centre = shape instanceof L.Circle ? shape.getLatLng() : L.latLng(store.lat, store.lon);
    setShape(L.circle(centre, { radius: metres, ...SHAPE_STYLE }), { fit: true });
  });

  const fromJson = () => {
    try {
      const fence = JSON.parse(json.value);
      if (!fence || typeof fence !== "object") throw new Error("not an object");
      return fence;
    } catch {
      json.setAttribute("aria-invalid", "true");
      alert.replaceChildren(label("p", "stores.fence.bad_json"));
      return null;
    }
  };
  showJson.addEventListener("click", () => {
    clearErrorMarks();
    const fence = fromJson();
    if (!fence) return;
    try {
      setShape(layerOf(fence, store), { fit: true });
    } catch {
      json.setAttribute("aria-invalid", "true");
      alert.replaceChildren(label("p", "stores.fence.bad_json"));
    }
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrorMarks();
    const fence = fromJson();
    if (!fence) return;
    save.disabled = true;
    status.replaceChildren(label("span", "stores.fence.saving"));
    try {
      const saved = await api("PATCH", `/api/stores/${encodeURIComponent(store.id)}`, { fence });
      store.fence = saved.fence;
      setShape(layerOf(saved.fence, saved));
      status.replaceChildren(label("span", "stores.fence.saved"));
    } catch (error) {
      status.replaceChildren();
      showFenceError(error, fence);
    } finally {
      save.disabled = false;
    }
  });

  /** Draw the server's refusal: the ring (or the whole fence) it names outlined in red, the
   *  message at the place it gives ("near [lon, lat]"), the vertex or the ring's start; and
   *  the message with the field next to the map. */
  function showFenceError(error, fence) {
    const message = errorText(error);
    const text = error.field
      ? t("stores.fence.error_field", { field: error.field, message })
      : message;
    const para = document.createElement("p");
    para.textContent = text;
    para.dataset.field = error.field || "";
    alert.replaceChildren(para);
    json.setAttribute("aria-invalid", "true");
    json.setAttribute("aria-describedby", "fence-error");

    const { rings, anchor } = errorPlace(error, fence, store);
    for (const ring of rings) {
      L.polygon(ring.map(([lon, lat]) => [lat, lon]), {
        ...ERROR_STYLE,
        renderer: errorRenderer,
        className: "fence-error-ring",
      }).addTo(errors);
    }
    if (anchor) {
      L.circleMarker([anchor[1], anchor[0]], { radius: 8, color: "#c62828", weight: 3, fill: false, interactive: false }).addTo(errors);
      const content = document.createElement("span");
      content.textContent = text;
      L.tooltip({ permanent: true, direction: "top", className: "fence-error-tip", offset: [0, -8] })
        .setLatLng([anchor[1], anchor[0]])
        .setContent(content)
        .addTo(errors);
    }
  }

  return {
    remove() {
      document.removeEventListener("languagechange", geomanLanguage);
      // Geoman's modes and the shape's handles first: removing the map under an enabled
      // shape makes Geoman reach for handles that are already gone.
      map.pm.disableDraw();
      map.pm.disableGlobalCutMode();
      if (shape) shape.pm.disable();
      storePoint.remove();
      removeMap(map);
    },
  };
}

/** Where on the map a fence error belongs: the rings to outline and the point to anchor its
 *  message at, from the envelope's field (fence.coordinates[p][r][v]) and message. */
export function errorPlace(error, fence, store) {
  const near = /near \[(-?[\d.]+), (-?[\d.]+)\]/.exec(error.message || "");
  const nearPoint = near ? [Number(near[1]), Number(near[2])] : null;
  const field = error.field || "";
  if (!fence || !Array.isArray(fence.coordinates) || !field.startsWith("fence.coordinates")) {
    if (fence && fence.type === "circle") {
      const centre = Array.isArray(fence.center) ? fence.center : [store.lon, store.lat];
      return { rings: [], anchor: nearPoint || centre };
    }
    return { rings: [], anchor: nearPoint || [store.lon, store.lat] };
  }
  const indexes = [...field.matchAll(/\[(\d+)\]/g)].map((m) => Number(m[1]));
  const polygons = fence.type === "MultiPolygon" ? fence.coordinates : [fence.coordinates];
  let rings = [];
  let vertex = null;
  const ringsOf = (polygon) => (Array.isArray(polygon) ? polygon.filter((ring) => Array.isArray(ring) && ring.length) : []);
  if (fence.type === "MultiPolygon") {
    const polygon = indexes.length ? polygons[indexes[0]] : null;
    if (polygon && indexes.length > 1) rings = ringsOf([polygon[indexes[1]]]);
    else if (polygon) rings = ringsOf(polygon);
    else rings = polygons.flatMap(ringsOf);
    if (indexes.length > 2 && rings[0]) vertex = rings[0][indexes[2]];
  } else {
    if (indexes.length) rings = ringsOf([fence.coordinates[indexes[0]]]);
    else rings = ringsOf(fence.coordinates);
    if (indexes.length > 1 && rings[0]) vertex = rings[0][indexes[1]];
  }
  rings = rings.filter((ring) => ring.every((p) => Array.isArray(p) && p.length >= 2 && p.every(Number.isFinite)));
  const anchor = nearPoint || (Array.isArray(vertex) ? vertex : null) || (rings[0] && rings[0][0]) || [store.lon, store.lat];
  return { rings, anchor };
}
