/* Field CRM service worker: the shell from cache, pages from the network with the last
   copy (or the offline page) when there is no signal.
   The server stamps VERSION with a hash of the shell's files (webapp/views/pwa.py):
   shell assets are served cache-first, so a new app.css reaches phones only through a
   new cache name, and the changed bytes of this file are what makes browsers update. */
const VERSION = "__SHELL_VERSION__";
const SHELL_CACHE = "fieldcrm-shell-v" + VERSION;
// Pages hold personal data: kept apart so signing out can drop them without the shell.
const PAGE_CACHE = "fieldcrm-pages-v" + VERSION;
const MAX_PAGES = 50;
const OFFLINE_URL = "/offline";
const SHELL = [
  "/static/css/app.css",
  "/static/js/htmx-4.0.1.min.js",
  "/static/js/app.js",
  "/static/icons/icon-192.png",
  "/static/icons/icon-512.png",
  "/static/icons/maskable-512.png",
  "/static/icons/apple-touch-icon.png",
  "/manifest.webmanifest",
  OFFLINE_URL,
];
const SIGN_OUT = ["/logout", "/account/sign-out-everywhere"];

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(SHELL_CACHE)
      // "no-cache" revalidates with the server (a cheap 304 for what the page just
      // loaded), so a new VERSION never precaches a stale copy from the HTTP cache.
      .then((cache) => cache.addAll(SHELL.map((url) => new Request(url, { cache: "no-cache" }))))
      .then(() => self.skipWaiting())
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    const keep = [SHELL_CACHE, PAGE_CACHE];
    for (const key of await caches.keys()) {
      if (!keep.includes(key)) await caches.delete(key);
    }
    // Preload starts the page request while this worker boots, so network-first costs
    // no extra round trip.
    if (self.registration.navigationPreload) await self.registration.navigationPreload.enable();
    await self.clients.claim();
  })());
});

// A copy worth keeping: a whole, same-origin, successful answer (no redirects, no opaque).
const cacheable = (response) =>
  response && response.status === 200 && response.type === "basic" && !response.redirected;
const isHtml = (response) => (response.headers.get("Content-Type") || "").startsWith("text/html");

async function keepPage(request, response) {
  const cache = await caches.open(PAGE_CACHE);
  // Keyed by URL alone, so a page fetched by htmx is found by a plain navigation later.
  await cache.put(request.url, response);
  const keys = await cache.keys();
  for (const old of keys.slice(0, Math.max(0, keys.length - MAX_PAGES))) await cache.delete(old);
}

async function page(event) {
  try {
    const response = (await event.preloadResponse) || (await fetch(event.request));
    if (cacheable(response) && isHtml(response)) {
      event.waitUntil(keepPage(event.request, response.clone()));
    }
    return response;
  } catch {
    return (await caches.match(event.request, { cacheName: PAGE_CACHE })) ||
      (await caches.match(OFFLINE_URL, { cacheName: SHELL_CACHE })) ||
      Response.error();
  }
}

// A boosted link or a history restore: htmx asks for the whole page (HX-Request-Type:
// full). Kept only once the body proves to be a whole document, never a fragment.
async function boostedPage(event) {
  const response = await fetch(event.request);
  if (cacheable(response) && isHtml(response)) {
    const copy = response.clone();
    const whole = async () => /^\s*<!doctype html/i.test(await copy.clone().text());
    event.waitUntil(whole().then((ok) => ok && keepPage(event.request, copy)));
  }
  return response;
}

async function asset(event) {
  const cached = await caches.match(event.request, { cacheName: SHELL_CACHE });
  if (cached) return cached;
  const response = await fetch(event.request);
  if (cacheable(response)) {
    const copy = response.clone();
    event.waitUntil(caches.open(SHELL_CACHE).then((cache) => cache.put(event.request, copy)));
  }
  return response;
}

self.addEventListener("fetch", (event) => {
  const { request } = event;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.method !== "GET") {
    // Writes go straight to the network (queueing them offline will hook in here); a
    // sign-out also forgets the pages this phone kept for the user.
    if (request.method === "POST" && SIGN_OUT.includes(url.pathname)) {
      event.waitUntil(caches.delete(PAGE_CACHE));
    }
    return;
  }
  // Fragments vary by HX-Request and are never cached, so one can never stand in for a
  // page. When a whole-page request fails offline, app.js turns it into a navigation.
  if (request.headers.has("HX-Request")) {
    if (request.headers.get("HX-Request-Type") === "full") event.respondWith(boostedPage(event));
    return;
  }
  if (request.mode === "navigate") {
    event.respondWith(page(event));
  } else if (url.pathname.startsWith("/static/") || url.pathname === "/manifest.webmanifest") {
    event.respondWith(asset(event));
  }
});
