// The shopper app (/app/, role shopper): sign up or sign in, consent to location, then one view
// at a time chosen by the address's hash — #map, #wallet, #wallet/<coupon id> (its QR, full
// screen), #settings — like the marketer console (docs/frontend.md, "The shopper app").
// The position is watched once consent is given (app-location.js) and shared with the views.
import { api, errorText, keepSession } from "../js/api.js";
import { label, t } from "../js/i18n.js";
import { startPage } from "../js/shell.js";
import { connect } from "../js/socket.js";
import { followHash, hashRoute, navigate, sectionNav } from "../js/views.js";
import { showConsent, showSettings, signUpBox } from "./app-account.js";
import { forgetBuffer, startTracking } from "./app-location.js";
import * as catchView from "./app-catch.js";
import * as liveView from "./app-live.js";
import * as mapView from "./app-map.js";
import * as walletView from "./app-wallet.js";

const NOTICE = "footfall.app.notice";
const CONSENT = "footfall.app.consent";
const VIEWS = {
  map: ["app.nav.map", mapView.show],
  catch: ["app.nav.catch", catchView.show],
  wallet: ["app.nav.wallet", walletView.show],
  live: ["app.nav.live", liveView.show],
  settings: ["app.nav.settings", null],
};

// A guest (POST /api/auth/guest, no account) only watches live streams.
let guest = false;

function route() {
  const { name, args } = hashRoute();
  if (guest) return { name: "live", args: name === "live" ? args : [] };
  return name in VIEWS ? { name, args } : { name: "map", args: [] };
}

/** What every view may read: the last fix, the tracking status, and listeners. */
function createState() {
  const listeners = new Set();
  const state = {
    fix: null,
    tracking: { waiting: 0, dropped: 0, online: navigator.onLine, error: null, on: false },
    listen(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    emit(kind, data) {
      for (const fn of listeners) fn(kind, data);
    },
  };
  return state;
}

const NOTICE_MS = 15_000; // a notice goes by itself after this (or when dismissed)

/** Add a notice to the status region: the newest three at most, each with a dismiss button,
 *  each gone after NOTICE_MS so that notices do not push the page down for good. */
function announce(region, key, params) {
  const notice = document.createElement("p");
  const close = document.createElement("button");
  close.type = "button";
  close.className = "notice-close";
  close.textContent = "×";
  close.setAttribute("aria-label", t("app.notice.dismiss"));
  close.dataset.i18nAttr = "aria-label:app.notice.dismiss";
  close.addEventListener("click", () => notice.remove());
  notice.append(label("span", key, params), close);
  region.prepend(notice);
  while (region.children.length > 3) region.lastElementChild.remove();
  setTimeout(() => notice.remove(), NOTICE_MS);
}

/** A guest's app: the live streams only (no location, no wallet, no settings). */
async function renderGuest(main, user) {
  const view = document.createElement("div");
  view.className = "app-view";
  view.id = "app-view";
  main.append(label("p", "app.guest.note", null, { class: "card notice" }), view);
  const draw = (name, args) => liveView.show(view, { user, args, navigate });
  const views = followHash({ route, view, draw, onError: failureIn(view) });
  document.getElementById("sign-out").addEventListener("click", () => {
    views.stop();
    guest = false;
  });
  await views.ready;
}

/** Draw a view that failed (offline, or the server failed) as a note instead of a blank. */
function failureIn(view) {
  return (error) =>
    view.replaceChildren(
      label("p", "app.map.error", { message: errorText(error) }, { role: "alert", class: "card" }),
    );
}

startPage({
  titleKey: "app.title",
  roles: ["shopper", "guest"],
  signInExtra(box, done) {
    // "Watch as a guest": a guest session watches live streams without an account.
    const watch = label("button", "app.guest.watch", null, { type: "button", id: "guest-watch" });
    watch.addEventListener("click", async () => {
      try {
        keepSession(await api("POST", "/api/auth/guest"));
      } catch (error) {
        watch.after(label("p", "app.map.error", { message: errorText(error) }, { role: "alert" }));
        return;
      }
      location.hash = "#live";
      done();
    });
    box.after(watch);
    const notice = sessionStorage.getItem(NOTICE);
    if (notice) {
      sessionStorage.removeItem(NOTICE);
      box.before(label("p", notice, null, { role: "status", class: "card notice", id: "app-notice" }));
    }
    signUpBox(box, done);
  },
  async render(main, user) {
    document.body.classList.add("shopper-app");
    guest = user.role === "guest";
    if (guest) return renderGuest(main, user);
    const state = createState();
    const view = document.createElement("div");
    view.className = "app-view";
    view.id = "app-view";
    const trackLine = document.createElement("p");
    trackLine.className = "track-line";
    trackLine.id = "track-status";
    trackLine.setAttribute("role", "status");
    const notices = document.createElement("div");
    notices.className = "notices";
    notices.id = "notices";
    notices.setAttribute("role", "status");

    const entries = Object.entries(VIEWS).map(([name, [key]]) => [name, key]);
    const { nav, links } = sectionNav("app-nav", "app.nav.label", entries);
    main.append(notices, trackLine, view, nav);

    // Location: watched only with consent.
    // The last answer is kept for the tab: offline (the shell from the service worker's cache)
    // the app still knows whether to watch the position and buffer the fixes.
    let consent;
    try {
      consent = (await api("GET", "/api/me/consent")).location;
      sessionStorage.setItem(CONSENT, String(consent));
    } catch {
      consent = sessionStorage.getItem(CONSENT) === "true";
    }
    let stopTracking = null;
    const showTracking = () => {
      const s = state.tracking;
      if (!s.on) {
        trackLine.replaceChildren(label("span", "app.track.off"));
        return;
      }
      const parts = [label("span", s.online ? "app.track.on" : "app.track.offline")];
      if (s.waiting) parts.push(label("span", "app.track.waiting", { count: s.waiting }, { id: "track-waiting" }));
      if (s.dropped) parts.push(label("span", "app.track.dropped", { count: s.dropped, max: 100 }, { id: "track-dropped" }));
      if (s.error && s.error.code === 1) parts.push(label("span", "app.track.denied"));
      trackLine.replaceChildren(...parts.flatMap((p, i) => (i ? [document.createTextNode(" · "), p] : [p])));
    };
    const track = (on) => {
      if (stopTracking) stopTracking();
      stopTracking = null;
      state.tracking.on = on;
      if (on) {
        stopTracking = startTracking({
          onFix: (fix) => {
            state.fix = fix;
            state.emit("fix", fix);
          },
          onSent: (outcome, batch) => {
            // How many fixes this tab has sent (for the curious, and for tests).
            trackLine.dataset.sent = String(Number(trackLine.dataset.sent || 0) + batch.length);
            state.emit("sent", outcome);
          },
          onStatus: (status) => {
            Object.assign(state.tracking, status);
            showTracking();
          },
          onError: (error) => {
            state.tracking.error = error;
            showTracking();
          },
        });
      } else forgetBuffer();
      showTracking();
    };
    track(consent);

    // "You entered …": from the /shopper socket, and from the answers to the fixes this tab
    // sent (a batch sent on reconnecting may be answered before the socket is back); an event
    // has one id wherever it comes from, so it is announced once.
    const announced = new Set();
    const entered = async (event) => {
      if (event.kind !== "enter" || announced.has(event.id)) return;
      announced.add(event.id);
      const name = await mapView.storeName(event.store_id);
      announce(notices, "app.notice.entered", { store: name });
      state.emit("geofence", event);
    };
    state.listen((kind, outcome) => {
      if (kind !== "sent") return;
      for (const result of outcome.results) for (const event of result.events) entered(event);
    });
    // The shopper's own socket: geofence events and new coupons. It is closed while the
    // browser is offline (no reconnecting in vain) and opened again when it is back.
    let socket = null;
    const openSocket = () => {
      if (socket || !navigator.onLine) return;
      socket = connect("/shopper");
      socket.on("geofence", entered);
      socket.on("coupon_issued", (coupon) => {
        announce(notices, "app.notice.coupon", { title: coupon.title });
        state.emit("coupon", coupon);
      });
    };
    const closeSocket = () => {
      if (socket) socket.close();
      socket = null;
    };
    window.addEventListener("online", openSocket);
    window.addEventListener("offline", closeSocket);
    openSocket();

    const drawView = async (name, args) => {
      let done = null;
      if (name === "settings") {
        await showSettings(view, {
          onConsent: (granted) => {
            consent = granted;
            sessionStorage.setItem(CONSENT, String(granted));
            track(granted);
          },
          onErased: () => {
            track(false);
            closeSocket();
            sessionStorage.setItem(NOTICE, "app.settings.erased");
            location.hash = "";
            location.reload();
          },
        });
      } else if ((name === "map" || name === "catch") && !consent) {
        await showConsent(view, () => {
          consent = true;
          sessionStorage.setItem(CONSENT, "true");
          track(true);
          return draw();
        });
      } else {
        done = await VIEWS[name][1](view, { user, args, navigate, state });
      }
      return done;
    };
    const views = followHash({ route, view, draw: drawView, links, onError: failureIn(view) });
    const draw = views.redraw;
    document.getElementById("sign-out").addEventListener("click", () => {
      views.stop();
      track(false);
      window.removeEventListener("online", openSocket);
      window.removeEventListener("offline", closeSocket);
      closeSocket();
    });
    await views.ready;
  },
});

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/app/sw.js", { scope: "/app/" }).catch((error) => {
    console.warn("service worker not registered", error);
  });
}
