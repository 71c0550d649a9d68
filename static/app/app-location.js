// The shopper's position: navigator.geolocation.watchPosition, each fix sent to the API.
// A fix that cannot be sent (the browser is offline, or the send fails on the network) waits
// in a buffer that is sent as one batch (POST /api/location/fixes) when the connection
// returns (the `online` event). The buffer keeps the newest 100 fixes (the batch endpoint's
// limit); older ones are dropped and the status line says how many.
//
// The buffer lives in memory and in sessionStorage: it survives a reload of the tab (the app
// shell loads from the service worker's cache while offline) but not the tab itself, like the
// tab's token, so coordinates never outlive the session on this device; localStorage would keep
// them after sign-out, and IndexedDB's asynchronous API buys nothing for 100 small records.
import { ApiError, api } from "../js/api.js";

export const MAX_BUFFERED = 100;
const BUFFER = "footfall.app.fixes";

/** Start watching the position; `onFix(fix)` gets every fix, `onSent(outcome)` each answer,
 *  `onStatus(status)` the buffer's state ({waiting, dropped, online, error}). Returns stop(). */
export function startTracking({ onFix, onSent, onStatus, onError }) {
  let buffer = load();
  let dropped = 0;
  let sending = false;
  let lastRecorded = buffer.length ? buffer[buffer.length - 1].recorded_at : 0;
  const status = (error = null) =>
    onStatus({ waiting: buffer.length, dropped, online: navigator.onLine, error });

  const save = () => sessionStorage.setItem(BUFFER, JSON.stringify(buffer));

  const flush = async () => {
    if (sending || !buffer.length || !navigator.onLine) return status();
    sending = true;
    const batch = buffer.slice(0, MAX_BUFFERED);
    let sent = false;
    try {
      const outcome =
        batch.length === 1
          ? await api("POST", "/api/location/fix", batch[0])
          : await api("POST", "/api/location/fixes", { fixes: batch });
      buffer = buffer.slice(batch.length);
      save();
      sent = true;
      onSent(outcome, batch);
      status();
    } catch (error) {
      // A network failure keeps the fixes for the next try; a refusal drops them (sending
      // them again would be refused again) and is shown.
      if (!(error instanceof ApiError) || error.status === 0 || error.status >= 500) {
        status(error);
      } else {
        buffer = buffer.slice(batch.length);
        save();
        onError(error);
        status(error);
      }
    } finally {
      sending = false;
    }
    // Fixes recorded while this batch was on its way go next.
    if (sent && buffer.length && navigator.onLine) flush();
  };

  const add = (position) => {
    const c = position.coords;
    // recorded_at must grow strictly: the server ignores a fix not newer than the last.
    const recorded = Math.max(position.timestamp / 1000, lastRecorded + 0.001);
    lastRecorded = recorded;
    const fix = {
      lat: Number(c.latitude.toFixed(6)),
      lon: Number(c.longitude.toFixed(6)),
      accuracy_m: Math.max(1, Number((c.accuracy || 1).toFixed(1))),
      recorded_at: Number(recorded.toFixed(3)),
    };
    if (typeof c.speed === "number" && c.speed >= 0) fix.speed_mps = c.speed;
    buffer.push(fix);
    if (buffer.length > MAX_BUFFERED) {
      dropped += buffer.length - MAX_BUFFERED;
      buffer = buffer.slice(-MAX_BUFFERED);
    }
    save();
    onFix(fix);
    flush();
  };

  const online = () => flush();
  const offline = () => status();
  window.addEventListener("online", online);
  window.addEventListener("offline", offline);
  const watch = navigator.geolocation
    ? navigator.geolocation.watchPosition(add, (error) => onError(error), {
        enableHighAccuracy: true,
        maximumAge: 5000,
      })
    : null;
  if (!navigator.geolocation) onError({ code: "no_geolocation" });
  status();
  flush();
  return () => {
    if (watch !== null) navigator.geolocation.clearWatch(watch);
    window.removeEventListener("online", online);
    window.removeEventListener("offline", offline);
  };
}

/** Forget the buffered fixes (consent withdrawn, sign-out, erasure). */
export function forgetBuffer() {
  sessionStorage.removeItem(BUFFER);
}

function load() {
  try {
    const kept = JSON.parse(sessionStorage.getItem(BUFFER) || "[]");
    return Array.isArray(kept) ? kept.slice(-MAX_BUFFERED) : [];
  } catch {
    return [];
  }
}
