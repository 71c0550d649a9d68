// The live funnel's foot-traffic heatmap on a Leaflet map: one circle per store, its area and
// colour growing with the store's visits (enter + dwell). Drawn as SVG paths (Leaflet's
// documented `renderer` option) so each store is an element with its name as a tooltip; the
// numbers behind it are in the per-store table as well.
import { label, t } from "../js/i18n.js";

const L = window.L;
// From few to many visits: pale yellow to deep red.
const RAMP = ["#fee391", "#fec44f", "#fe9929", "#ec7014", "#cc4c02", "#8c2d04"];
const MIN_RADIUS_M = 40;
const MAX_RADIUS_M = 400;

function colour(share) {
  return RAMP[Math.min(RAMP.length - 1, Math.floor(share * RAMP.length))];
}

/** Draw (or redraw) the heat layer of `heat` ({stores, bbox}) on `map`; `owner` keeps the layer
 *  and whether the map was fitted. Return the most visits at one store. */
export function drawHeat(map, heat, owner) {
  if (!owner.heatLayer) {
    owner.heatLayer = L.layerGroup().addTo(map);
    owner.heatRenderer = L.svg();
  }
  owner.heatLayer.clearLayers();
  const max = Math.max(0, ...heat.stores.map((s) => s.visits));
  for (const store of heat.stores) {
    const share = max ? store.visits / max : 0;
    const circle = L.circle([store.lat, store.lon], {
      renderer: owner.heatRenderer,
      radius: MIN_RADIUS_M + Math.sqrt(share) * (MAX_RADIUS_M - MIN_RADIUS_M),
      color: colour(share),
      weight: 2,
      fillColor: colour(share),
      fillOpacity: 0.35 + 0.4 * share,
      className: "funnel-heat-spot",
      interactive: true,
    });
    circle.bindTooltip(
      t("funnel.heat_tip", {
        name: store.name,
        visits: store.visits,
        issued: store.issued,
        redeemed: store.redeemed,
      }),
    );
    circle.addTo(owner.heatLayer);
    const path = circle.getElement && circle.getElement();
    if (path) {
      path.dataset.store = store.store_id;
      path.dataset.visits = String(store.visits);
    }
  }
  if (!owner.heatFitted && heat.bbox) {
    const [south, west, north, east] = heat.bbox;
    // Not closer than a street view: a single store still shows its neighbourhood.
    map.fitBounds(
      [
        [south, west],
        [north, east],
      ],
      { maxZoom: 14 },
    );
    owner.heatFitted = true;
  }
  return max;
}

/** The legend under the map: the colour ramp from few visits to the most at one store. */
export function heatLegend(max) {
  const box = document.createElement("div");
  box.className = "funnel-legend-inner";
  box.append(label("p", "funnel.legend"));
  const ramp = document.createElement("div");
  ramp.className = "funnel-ramp";
  const swatches = document.createElement("span");
  swatches.className = "funnel-swatches";
  swatches.setAttribute("aria-hidden", "true");
  for (const fill of RAMP) {
    const swatch = document.createElement("span");
    swatch.className = "funnel-swatch";
    swatch.style.background = fill;
    swatches.append(swatch);
  }
  ramp.append(label("span", "funnel.legend_few"), swatches, label("span", "funnel.legend_most", { max }));
  box.append(ramp);
  return box;
}
