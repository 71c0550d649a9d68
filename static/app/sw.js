// The shopper app's service worker (served as /app/sw.js, so its scope is /app/). It keeps the
// app shell — the page, its modules, styles, catalogues, icons and the /vendor/ libraries it
// loads — in a cache, so the app opens without a network. The shell is asked from the network
// first (a new deploy is seen at once) and taken from the cache only when that fails. The API
// (/api/) and the socket (/socket.io/) are never handled here: the browser asks the network,
// nothing of theirs is cached, so no answer is ever stale.
const CACHE = "footfall-app-shell-v7";
const SHELL = [
  "/app/",
  "/app/manifest.webmanifest",
  "/static/app.css",
  "/static/app/app.css",
  "/static/app/app.js",
  "/static/app/app-account.js",
  "/static/app/app-bearing.js",
  "/static/app/app-catch.js",
  "/static/app/app-live.js",
  "/static/app/app-location.js",
  "/static/app/app-map.js",
  "/static/app/app-wallet.js",
  "/static/app/icons/icon-192.png",
  "/static/app/icons/icon-512.png",
  "/static/console/map.js",
  "/static/js/api.js",
  "/static/js/i18n.js",
  "/static/js/player.js",
  "/static/js/shell.js",
  "/static/js/socket.js",
  "/static/js/views.js",
  "/static/i18n/en.json",
  "/static/i18n/zh-CN.json",
  "/vendor/leaflet/leaflet.css",
  "/vendor/leaflet/leaflet.js",
  "/vendor/hls.js/hls.min.mjs",
  "/vendor/socket.io-client/socket.io.esm.min.js",
];

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(SHELL))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((n) => n !== CACHE).map((n) => caches.delete(n))))
      .then(() => self.clients.claim()),
  );
});

/** Whether a request is part of the shell (same origin, GET, not the API or the socket). */
function isShell(url, request) {
  if (request.method !== "GET" || url.origin !== self.location.origin) return false;
  if (url.pathname.startsWith("/api/") || url.pathname.startsWith("/socket.io/")) return false;
  return SHELL.includes(url.pathname) || url.pathname.startsWith("/vendor/leaflet/images/");
}

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (!isShell(url, event.request)) return; // network only: the browser handles it
  event.respondWith(
    fetch(event.request)
      .then((response) => {
        if (response.ok) {
          const copy = response.clone();
          event.waitUntil(caches.open(CACHE).then((cache) => cache.put(url.pathname, copy)));
        }
        return response;
      })
      .catch(() => caches.match(url.pathname).then((hit) => hit || Response.error())),
  );
});
