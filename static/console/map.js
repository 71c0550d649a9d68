// The console's maps: Leaflet (window.L, a classic script) with the server's tile settings
// (GET /api/client-config). With no tile URL, or tiles that do not load, the map is a plain
// background that still shows stores, fences and heat.
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

/** Make a Leaflet map in `element` (Shanghai's centre unless told), with tiles if configured. */
export async function createMap(element, { center = [31.2304, 121.4737], zoom = 12 } = {}) {
  const settings = await mapConfig();
  element.classList.add("map");
  const map = L.map(element, { center, zoom, preferCanvas: true, maxZoom: settings.max_zoom });
  if (settings.tile_url) {
    L.tileLayer(settings.tile_url, {
      attribution: settings.attribution,
      maxZoom: settings.max_zoom,
    }).addTo(map);
  }
  return map;
}

/** A store's fence as a Leaflet layer: a circle around its centre (the store's point unless
 *  the fence names one) or the GeoJSON polygon(s) with their holes. */
export function fenceLayer(store, style = {}) {
  const fence = store.fence || {};
  if (fence.type === "circle") {
    const [lon, lat] = fence.center || [store.lon, store.lat];
    return L.circle([lat, lon], { radius: fence.radius_m, ...style });
  }
  return L.geoJSON({ type: fence.type, coordinates: fence.coordinates }, { style: () => style });
}
