// The console's maps: Leaflet (window.L, a classic script) with the server's tile settings
// (GET /api/client-config). With no tile URL, or tiles that do not load, the map is a plain
// background that still shows stores, fences and heat.
//
// What other views may import:
//   mapConfig()                       the server's map settings, fetched once
//   createMap(element, {center, zoom, ...leafletOptions})  a Leaflet map with tiles if any
//   fenceLayer(store, style)          a store's fence as a Leaflet layer
//   storesLayer(map, pins, {onSelect, fenceZoom, label})  every store on a map: markers in
//       clusters (leaflet.markercluster, chunked loading) and, from zoom `fenceZoom` (15) on,
//       the fences of the stores in view only. `pins` are items of GET /api/stores/map
//       ({id, name, brand, city, lat, lon, fence}); `onSelect(pin)` runs when a store's marker
//       is clicked or activated with Enter. Returns {setPins(pins), fitAll(), remove()} (remove()
//       resolves once markers still loading are in: remove the map after it). The
//       map's element carries data-zoom and data-fences (fences drawn now) after each move.
const L = window.L;
let config = null;

/** The server's map settings: { tile_url, attribution, max_zoom }, fetched once. */
export async function mapConfig() {
  if (!config) {
    const response = await fetch("/api/client-config");
    config = response.ok ? (await response.json()).map : { tile_url: "", attribution: "", max_zoom: 19 };
  }
  return config;
}

/** Make a Leaflet map in `element` (Shanghai's centre unless told), with tiles if configured.
 *  Other Leaflet map options may be passed along. */
export async function createMap(element, { center = [31.2304, 121.4737], zoom = 12, ...options } = {}) {
  const settings = await mapConfig();
  element.classList.add("map");
  const map = L.map(element, { center, zoom, preferCanvas: true, maxZoom: settings.max_zoom, ...options });
  if (settings.tile_url) {
    L.tileLayer(settings.tile_url, {
      attribution: settings.attribution,
      maxZoom: settings.max_zoom,
    }).addTo(map);
  }
  return map;
}

// Leaflet ends a zoom animation with a 250 ms timer that moves the map's panes; a map removed
// before it fires makes that timer throw inside Leaflet (a view left right after a fitBounds).
const ZOOM_SETTLE_MS = 300;

/** Remove a map whose view is going, once a zoom animation it may be in has ended (its
 *  element is already out of the page meanwhile). */
export function removeMap(map) {
  setTimeout(() => map.remove(), ZOOM_SETTLE_MS);
}

/** A store's fence as a Leaflet layer: a circle around its centre (the store's point unless
 *  the fence names one) or the GeoJSON polygon(s) with their holes. */
export function fenceLayer(store, style = {}) {
  const fence = store.fence || {};
  if (fence.type === "circle") {
    const [lon, lat] = fence.center || [store.lon, store.lat];
    return L.circle([lat, lon], { radius: fence.radius_m, ...style });
  }
  return L.geoJSON(
    { type: fence.type, coordinates: fence.coordinates },
    { style: () => style, interactive: style.interactive !== false },
  );
}

const PIN = L.divIcon({ className: "store-pin", html: "", iconSize: [16, 16] });
const FENCE_STYLE = { color: "#1d5fa8", weight: 2, fillOpacity: 0.12, interactive: false };
const MAX_FENCES_IN_VIEW = 600;

/** Every store on a map: clustered markers, and the fences of the stores in view when zoomed
 *  in (so thousands of fences never slow panning). See the top of this file. */
export function storesLayer(map, pins, { onSelect = null, fenceZoom = 15, label = null } = {}) {
  // Thousands of markers go into the cluster group in chunks between timers; a chunk that runs
  // after the group (or its map) was removed throws inside markercluster. `loading` settles
  // when the last chunk of every setPins so far is in, and remove() waits for it.
  let loading = Promise.resolve();
  let loaded = () => {};
  let pending = 0; // setPins calls whose markers are not all in yet
  const clusters = L.markerClusterGroup({
    chunkedLoading: true,
    showCoverageOnHover: false,
    chunkProgress: (done, total) => {
      if (done >= total && --pending === 0) loaded();
    },
  });
  const fences = L.layerGroup();
  let current = [];
  clusters.addTo(map);
  fences.addTo(map);

  // After each move: the fences of the stores in view (and a margin), none when zoomed out.
  // The map's element says its zoom and how many fences it drew (data-zoom, data-fences).
  const drawFences = () => {
    fences.clearLayers();
    let drawn = 0;
    if (map.getZoom() >= fenceZoom) {
      const bounds = map.getBounds().pad(0.25);
      for (const pin of current) {
        if (!bounds.contains([pin.lat, pin.lon])) continue;
        fences.addLayer(fenceLayer(pin, FENCE_STYLE));
        if (++drawn >= MAX_FENCES_IN_VIEW) break;
      }
    }
    map.getContainer().dataset.zoom = String(map.getZoom());
    map.getContainer().dataset.fences = String(drawn);
  };

  const setPins = (next) => {
    current = next;
    clusters.clearLayers();
    if (pending++ === 0) {
      loading = new Promise((resolve) => {
        loaded = resolve;
      });
    }
    const markers = next.map((pin) => {
      const name = label ? label(pin) : pin.name;
      const marker = L.marker([pin.lat, pin.lon], { icon: PIN, title: name, alt: name, keyboard: true });
      // The store's id on its marker's element (data-store-id), for pages and tests.
      marker.on("add", () => marker.getElement()?.setAttribute("data-store-id", pin.id));
      if (onSelect) marker.on("click", () => onSelect(pin));
      return marker;
    });
    clusters.addLayers(markers);
    drawFences();
  };

  const fitAll = () => {
    if (!current.length) return;
    const bounds = L.latLngBounds(current.map((pin) => [pin.lat, pin.lon]));
    map.fitBounds(bounds, { padding: [24, 24], maxZoom: 16 });
  };

  map.on("moveend", drawFences);
  setPins(pins);
  return {
    setPins,
    fitAll,
    /** Take the layers off the map once the markers being added are in; resolves then. */
    remove() {
      map.off("moveend", drawFences);
      return loading.then(() => {
        clusters.remove();
        fences.remove();
      });
    },
  };
}
