// The AR catch view (#catch): the rear camera (getUserMedia, facingMode "environment") behind
// the creatures around the shopper (GET /api/game/spawns), each drawn at its bearing relative
// to the compass heading (DeviceOrientationEvent, app-bearing.js) and sized by its distance.
// Without a camera or a compass (a desktop) the view is a radar: a 2D plot around the shopper,
// north up. A throw — a swipe up on the view, or the "Throw" button for keyboards — goes to
// POST /api/game/catches with the current position; the result and reward are shown, and a
// caught creature disappears.
import { ApiError, api, errorText } from "../js/api.js";
import { element, label, t } from "../js/i18n.js";
import { headingOf, radarPoint, relativeBearing, screenX, spriteSize } from "./app-bearing.js";

const FOV_DEG = 60; // the horizontal field of view assumed for a phone's rear camera
const RADAR_PX = 280;
const RADAR_RANGE_M = 200; // the spawns are asked within this distance, so all fit
const SWIPE_PX = 60;

export async function show(view, { state }) {
  const section = element("section", { id: "catch-view", class: "catch", "aria-labelledby": "catch-title" });
  section.dataset.mode = "radar";
  const title = label("h2", "app.catch.title", null, { id: "catch-title" });
  const modeLine = element("p", { id: "catch-mode", role: "status" });
  const stage = element("div", { id: "catch-stage", class: "catch-stage" });
  const camera = element("video", { id: "catch-camera", autoplay: "", muted: "", playsinline: "", "aria-hidden": "true" });
  camera.muted = true;
  camera.hidden = true;
  const layer = element("div", { class: "catch-layer", id: "catch-layer" });
  const radar = element("div", { id: "catch-radar", class: "catch-radar", role: "group" });
  radar.setAttribute("aria-label", t("app.catch.radar_label", { m: RADAR_RANGE_M }));
  radar.style.width = radar.style.height = `${RADAR_PX}px`;
  radar.append(element("span", { class: "radar-me", "aria-hidden": "true" }));
  stage.append(camera, layer, radar);
  const target = element("p", { id: "catch-target" });
  const throwButton = label("button", "app.catch.throw", null, { type: "button", id: "catch-throw" });
  const compassButton = label("button", "app.catch.compass", null, { type: "button", id: "catch-compass" });
  compassButton.hidden = typeof DeviceOrientationEvent === "undefined" || typeof DeviceOrientationEvent.requestPermission !== "function";
  const result = element("p", { id: "catch-result", role: "status" });
  const listTitle = label("h3", "app.catch.list");
  const list = element("ul", { id: "catch-list", class: "plain-list" });
  section.append(title, modeLine, stage, target, throwButton, compassButton, result, listTitle, list);
  view.replaceChildren(section);

  let spawns = [];
  let selected = null;
  let heading = null;
  let stream = null;
  let gone = false;
  let lastRecorded = 0;

  const mode = () => (stream && heading !== null ? "ar" : "radar");
  const showMode = () => {
    const now = mode();
    section.dataset.mode = now;
    camera.hidden = now !== "ar";
    layer.hidden = now !== "ar";
    radar.hidden = now !== "radar";
    const why = now === "ar" ? "app.catch.mode_ar" : stream ? "app.catch.no_compass" : "app.catch.no_camera";
    modeLine.replaceChildren(label("span", why));
  };

  const select = (spawn) => {
    selected = spawn;
    target.replaceChildren(spawn ? label("span", "app.catch.target", { name: spawn.name, m: Math.round(spawn.distance_m) }) : label("span", "app.catch.no_target"));
    throwButton.disabled = !spawn;
    for (const el of section.querySelectorAll("[data-spawn-id]")) {
      el.classList.toggle("selected", Boolean(spawn) && el.dataset.spawnId === spawn.id);
    }
  };

  const creatureButton = (spawn, size) => {
    const button = element("button", { type: "button", class: "creature-button", "data-spawn-id": spawn.id });
    button.setAttribute("aria-label", t("app.catch.creature", { name: spawn.name, m: Math.round(spawn.distance_m) }));
    const img = element("img", { src: spawn.sprite_url, alt: "", width: String(size), height: String(size) });
    button.append(img);
    button.addEventListener("click", () => select(spawn));
    return button;
  };

  const draw = () => {
    showMode();
    const width = stage.clientWidth || 360;
    layer.replaceChildren();
    for (const el of radar.querySelectorAll(".creature-button")) el.remove();
    // Farther creatures first, so a nearer one is painted over them as it would hide them.
    const farFirst = [...spawns].sort((a, b) => b.distance_m - a.distance_m);
    for (const spawn of farFirst) {
      if (mode() === "ar") {
        const relative = relativeBearing(spawn.bearing_deg, heading);
        const x = screenX(relative, width, FOV_DEG);
        if (x === null) continue;
        const size = spriteSize(spawn.distance_m, spawn.ar.anchor_size_m, spawn.ar.suggested_scale, width, FOV_DEG);
        const button = creatureButton(spawn, size);
        button.style.left = `${x - size / 2}px`;
        // Nearer creatures lower on the screen (closer to the ground in front of the phone).
        button.style.top = `${Math.max(0, 60 - Math.min(spawn.distance_m, 80) * 0.5)}%`;
        button.dataset.x = String(Math.round(x));
        layer.append(button);
      } else {
        // On a circle 28 px smaller than the radar, so a creature at the edge stays inside it.
        const point = radarPoint(spawn.bearing_deg, spawn.distance_m, RADAR_RANGE_M, RADAR_PX - 28);
        const button = creatureButton(spawn, 28);
        button.style.left = `${point.x}px`;
        button.style.top = `${point.y}px`;
        radar.append(button);
      }
    }
    list.replaceChildren();
    for (const spawn of spawns) {
      const item = element("li", { "data-spawn-id": spawn.id });
      const pick = element("button", { type: "button" });
      pick.append(
        element("img", { src: spawn.sprite_url, alt: "", width: "32", height: "32" }),
        document.createTextNode(` ${t("app.catch.creature", { name: spawn.name, m: Math.round(spawn.distance_m) })}`),
      );
      pick.addEventListener("click", () => select(spawn));
      item.append(pick);
      list.append(item);
    }
    if (!spawns.length) list.append(label("li", "app.map.no_creatures"));
    select(selected && spawns.find((s) => s.id === selected.id) ? selected : null);
  };

  const load = async () => {
    let answer;
    try {
      answer = await api("GET", `/api/game/spawns?radius_m=${RADAR_RANGE_M}`);
    } catch (error) {
      if (gone) return;
      const noPosition = error instanceof ApiError && error.status === 409;
      list.replaceChildren(label("li", noPosition ? "app.map.no_position" : "app.map.error", { message: errorText(error) }, { role: "alert" }));
      return;
    }
    if (gone) return;
    spawns = answer.spawns.filter((s) => !s.caught);
    section.dataset.spawns = String(spawns.length);
    draw();
  };

  const throwAt = async () => {
    const spawn = selected;
    const fix = state.fix;
    if (!spawn) return;
    if (!fix) {
      result.replaceChildren(label("span", "app.map.no_position"));
      return;
    }
    // The throw's fix is the newest position, recorded now (strictly after the last one sent).
    const recorded = Math.max(Date.now() / 1000, fix.recorded_at + 0.001, lastRecorded + 0.001);
    lastRecorded = recorded;
    const body = {
      spawn_id: spawn.id,
      fix: { lat: fix.lat, lon: fix.lon, accuracy_m: fix.accuracy_m, recorded_at: Number(recorded.toFixed(3)) },
    };
    throwButton.disabled = true;
    result.replaceChildren(label("span", "app.catch.throwing", { name: spawn.name }));
    let answer;
    try {
      answer = await api("POST", "/api/game/catches", body);
    } catch (error) {
      result.replaceChildren(label("span", "app.catch.refused", { message: errorText(error) }, { class: "field-error" }));
      throwButton.disabled = false;
      return;
    }
    section.dataset.outcome = answer.outcome;
    const parts = [label("span", `app.catch.${answer.outcome}`, { name: spawn.name, points: answer.points })];
    if (answer.coupon) parts.push(document.createTextNode(" "), label("span", "app.catch.coupon", { title: answer.coupon.title }));
    result.replaceChildren(...parts);
    if (answer.outcome !== "missed") {
      // Caught (or fled): it disappears.
      spawns = spawns.filter((s) => s.id !== spawn.id);
      section.dataset.spawns = String(spawns.length);
      selected = null;
    }
    draw();
  };
  throwButton.addEventListener("click", throwAt);

  // The throw gesture: a swipe up on the view.
  let start = null;
  stage.addEventListener("pointerdown", (event) => {
    start = { x: event.clientX, y: event.clientY };
  });
  stage.addEventListener("pointerup", (event) => {
    if (!start) return;
    const dy = event.clientY - start.y;
    const dx = event.clientX - start.x;
    start = null;
    if (dy < -SWIPE_PX && Math.abs(dx) < Math.abs(dy)) {
      if (!selected && spawns.length) {
        // No creature picked: the one nearest the middle of the view.
        const buttons = [...section.querySelectorAll(".catch-stage .creature-button")];
        const middle = stage.clientWidth / 2;
        buttons.sort((a, b) => Math.abs(Number(a.dataset.x || 0) - middle) - Math.abs(Number(b.dataset.x || 0) - middle));
        if (buttons[0]) select(spawns.find((s) => s.id === buttons[0].dataset.spawnId));
      }
      throwAt();
    }
  });

  // The compass: an absolute heading from either event (see headingOf).
  const onOrientation = (event) => {
    const h = headingOf(event);
    if (h === null) return;
    const first = heading === null;
    heading = h;
    section.dataset.heading = String(Math.round(h));
    if (first || mode() === "ar") draw();
  };
  window.addEventListener("deviceorientationabsolute", onOrientation);
  window.addEventListener("deviceorientation", onOrientation);
  compassButton.addEventListener("click", async () => {
    // iOS asks for permission on a tap.
    try {
      await DeviceOrientationEvent.requestPermission();
    } catch (error) {
      result.replaceChildren(label("span", "app.catch.refused", { message: String(error.message || error) }));
    }
  });

  // The camera: the rear one when there is a choice; none means the radar.
  if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia) {
    navigator.mediaDevices
      .getUserMedia({ video: { facingMode: "environment" }, audio: false })
      .then((media) => {
        if (gone) {
          media.getTracks().forEach((track) => track.stop());
          return;
        }
        stream = media;
        camera.srcObject = media;
        section.dataset.camera = "on";
        draw();
      })
      .catch(() => {
        section.dataset.camera = "off";
        showMode();
      });
  } else section.dataset.camera = "off";

  const stopListening = state.listen((kind) => kind === "sent" && load());
  showMode();
  select(null);
  await load();

  return () => {
    gone = true;
    stopListening();
    window.removeEventListener("deviceorientationabsolute", onOrientation);
    window.removeEventListener("deviceorientation", onOrientation);
    if (stream) stream.getTracks().forEach((track) => track.stop());
  };
}
