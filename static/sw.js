/* Field CRM service worker: the shell from cache, pages from the network with the last
   copy (or the offline page) when there is no signal, and the outbox sent by Background
   Sync where the browser has it (static/js/offline.js holds the outbox and the rules of
   what is kept offline; the page sends the outbox too, on `online` and at every load).
   The server stamps VERSION with a hash of the shell's files (webapp/views/pwa.py):
   shell assets are served cache-first, so a new app.css reaches phones only through a
   new cache name, and the changed bytes of this file are what makes browsers update. */
importScripts("/static/js/offline.js");
const VERSION = "__SHELL_VERSION__";
const SHELL_CACHE = "fieldcrm-shell-v" + VERSION;
// Pages hold personal data: kept apart (and across versions) so signing out can drop
// them without the shell; offline.js bounds them.
const PAGE_CACHE = self.Offline.PAGES;
const OFFLINE_URL = "/offline";
const SHELL = [
  "/static/css/app.css",
  "/static/js/htmx-4.0.1.min.js",
  "/static/js/offline.js",
  "__PAGE_SCRIPT__",
  "/static/icons/sprite.svg",
  "/manifest.webmanifest",
  OFFLINE_URL,
];
const BROWSER_ICON = /^\/static\/icons\/[^/]+\.png$/;
const SIGN_OUT = ["/logout", "/account/sign-out-everywhere"];
// Firefox fails a navigation whose preload failed, even one answered from the cache.
const PRELOAD = !/\bFirefox\//.test(self.navigator.userAgent);

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
    const shell = await caches.open(SHELL_CACHE);
    for (const key of await caches.keys()) {
      if (keep.includes(key)) continue;
      // A page's own assets that this phone kept come along in their new version, so
      // the pages it saved still work offline after an update.
      if (key.startsWith("fieldcrm-shell-v")) {
        for (const request of await (await caches.open(key)).keys()) {
          if (!(await shell.match(request))) await shell.add(request.url).catch(() => {});
        }
      }
      await caches.delete(key);
    }
    // Preload starts the page request while this worker boots, so network-first costs
    // no extra round trip.
    const preload = self.registration.navigationPreload;
    if (preload) await (PRELOAD ? preload.enable() : preload.disable());
    await self.clients.claim();
  })());
});

const isHtml = (response) => (response.headers.get("Content-Type") || "").startsWith("text/html");

// What one page needs beyond the shell (the board's script, the deal pages' stylesheet):
// not precached, so a first visit loads only what every page needs, but kept with the
// first page kept that names it, so a saved page works offline as it did online.
const PAGE_ASSET = /(?:data-script(?:-open)?="|<link rel="stylesheet" href=")(\/static\/[^"?#]+)"/g;
async function keepAssets(html) {
  const cache = await caches.open(SHELL_CACHE);
  for (const [, url] of html.matchAll(PAGE_ASSET)) {
    if (!(await cache.match(url))) await cache.add(url).catch(() => {});
  }
}

self.Offline.pageAssets = keepAssets; // Offline.keep calls it for every page it keeps

// Keyed by URL alone, so a page fetched by htmx is found by a plain navigation later.
const keepPage = (request, response) => self.Offline.keep(request.url, response);

// With no signal: the kept copy; a search of the list falls back to the kept list (search.js
// then searches the contacts kept on this phone); else the offline page.
async function fromCache(request) {
  const url = new URL(request.url);
  return (await self.Offline.saved(request)) ||
    (url.pathname === "/contacts" && url.search && (await self.Offline.saved(url.origin + "/contacts"))) ||
    (await caches.match(OFFLINE_URL, { cacheName: SHELL_CACHE })) ||
    Response.error();
}

async function page(event) {
  let response;
  try {
    response = (await event.preloadResponse) || (await fetch(event.request));
  } catch {
    return fromCache(event.request);
  }
  if (self.Offline.cacheable(response)) event.waitUntil(keepPage(event.request, response.clone()));
  return response;
}

// A boosted link or a history restore: htmx asks for the whole page (HX-Request-Type:
// full). Kept only once the body proves to be a whole document, never a fragment.
async function boostedPage(event) {
  const response = await fetch(event.request);
  if (self.Offline.cacheable(response) && isHtml(response)) {
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
  if (response && response.status === 200 && response.type === "basic") {
    const copy = response.clone();
    event.waitUntil(caches.open(SHELL_CACHE).then((cache) => cache.put(event.request, copy)));
  }
  return response;
}

self.addEventListener("fetch", (event) => {
  const { request } = event;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  // The JSON API is always the network's answer: a receipt from a cache is no receipt.
  if (url.pathname.startsWith("/api/")) return;
  if (request.method !== "GET") {
    // Writes go straight to the network (offline ones wait in the outbox, not here); a
    // sign-out also forgets the pages this phone kept for the user.
    if (request.method === "POST" && SIGN_OUT.includes(url.pathname)) {
      event.waitUntil(self.Offline.forget());
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
  } else if (BROWSER_ICON.test(url.pathname)) {
    // The browser's own loads (tab icon, touch icon, install icons) go to the network and
    // its HTTP cache: Firefox cancels a tab icon's load when the page moves on, and a
    // cancelled load this worker answered is reported as the worker's error.
    return;
  } else if (url.pathname.startsWith("/static/") || url.pathname === "/manifest.webmanifest") {
    event.respondWith(asset(event));
  }
});

// Background Sync (Chromium): the outbox goes out when the signal returns, even with the
// app closed. Failing the event asks the browser to try again later, with its backoff.
self.addEventListener("sync", (event) => {
  if (event.tag !== "outbox") return;
  event.waitUntil(self.Offline.flush().then((result) => {
    if ((result.problem === "offline" || result.problem === "server") && !event.lastChance) {
      throw new Error("the outbox is still waiting");
    }
  }));
});

// The page asks for the own contacts to be saved, here where a navigation cannot cut it
// off; and, before it signs out, for this worker to forget them and fall quiet.
self.addEventListener("message", (event) => {
  if (event.data === "prefetch") event.waitUntil(self.Offline.prefetch().catch(() => {}));
  if (event.data === "quiet") {
    event.waitUntil(self.Offline.quiet().catch(() => {}).then(() => event.ports[0].postMessage("quiet")));
  }
});

// A reminder pushed by the server: shown with the notification's key as its tag, so the
// same reminder delivered twice is one notification; open pages hear of it (the badge).
self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = { title: event.data.text() };
  }
  const title = data.title || "Field CRM";
  event.waitUntil((async () => {
    await self.registration.showNotification(title, {
      body: data.body || "",
      tag: data.tag || undefined,
      data: { url: data.url || "/notifications" },
      icon: "/static/icons/icon-192.png",
      badge: "/static/icons/icon-192.png",
    });
    for (const client of await self.clients.matchAll({ type: "window" })) {
      client.postMessage({ type: "push", tag: data.tag || "", title });
    }
  })());
});

// The push service replaced this phone's subscription (keys rotated, or it expired):
// subscribe again with the same server key and tell the server, or reminders would go
// to an endpoint that no longer exists. Without a session (signed out) nothing is sent.
self.addEventListener("pushsubscriptionchange", (event) => {
  const old = event.oldSubscription;
  event.waitUntil((async () => {
    const fresh = event.newSubscription || (old && (await self.registration.pushManager.subscribe(old.options)));
    const r = await fetch("/api/csrf", { credentials: "same-origin", cache: "no-store" });
    const token = r.ok && (await r.json()).csrf_token;
    if (!fresh || !token) return;
    const post = (url, body) => fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": token },
      body: JSON.stringify(body),
    });
    await post("/api/push/subscription", fresh);
    if (old && old.endpoint !== fresh.endpoint) await post("/api/push/unsubscribe", { endpoint: old.endpoint });
  })().catch(() => {}));
});

// A tap on it opens what it is about: in a window of the app already open, else a new one.
self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const target = new URL((event.notification.data || {}).url || "/notifications", self.location.origin);
  if (target.origin !== self.location.origin) return;
  event.waitUntil((async () => {
    for (const client of await self.clients.matchAll({ type: "window", includeUncontrolled: true })) {
      if ("navigate" in client) {
        await client.focus();
        return client.navigate(target.href);
      }
    }
    return self.clients.openWindow(target.href);
  })());
});
