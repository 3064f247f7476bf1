/* Field CRM offline: the outbox of entries logged on this phone, and the pages kept for
   reading with no signal. Shared by the page (app.js) and the service worker (sw.js
   imports it), so both follow the same rules:
   - An entry leaves the outbox only when a JSON answer names its uuid as stored. A
     refusal (403, 404, 409, 422) keeps it as failed, with the server's words, until the
     rep fixes, retries or discards it. Anything else (no signal, 401, 5xx, an HTML page,
     a redirect) keeps it waiting. Nothing expires on its own.
   - A batch starts with a fresh CSRF token and the signed-in user's id, and sends only
     that user's entries: another account's wait for that account to sign in here.
   - Pages kept offline are bounded by LIMITS. */
(() => {
  "use strict";
  const LIMITS = {
    own: 200, // the rep's own contacts (the server sends at most this many)
    recent: 100, // other pages viewed, most recently used first...
    recentDays: 14, // ...and none unused for longer
    pageBytes: 256e3, // a larger page is not kept
    bytes: 10e6, // all kept pages together: least recently used go first
  };
  const PAGES = "fieldcrm-pages-v1";
  const DAY = 864e5;
  const PREFETCH_EVERY = 6 * 36e5;
  const KEYS = { outbox: "uuid", pages: "url", meta: "key" };
  const TASK_PAGES = ["/today", "/tasks"];
  const channel = self.BroadcastChannel ? new BroadcastChannel("fieldcrm-sync") : null;
  const changed = () => channel && channel.postMessage("changed");
  let opening = null;
  let epoch = 0; // bumped by forget(): a prefetch under way keeps nothing after it

  const open = () => (opening ||= new Promise((resolve, reject) => {
    const req = indexedDB.open("fieldcrm", 1);
    req.onupgradeneeded = () => {
      for (const [name, keyPath] of Object.entries(KEYS)) req.result.createObjectStore(name, { keyPath });
    };
    req.onsuccess = () => {
      req.result.onversionchange = () => { req.result.close(); opening = null; };
      resolve(req.result);
    };
    req.onerror = req.onblocked = () => { opening = null; reject(req.error || new Error("blocked")); };
  }));
  const done = (req) => new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  const all = async (name) => done((await open()).transaction(name).objectStore(name).getAll());
  const get = async (name, key) => done((await open()).transaction(name).objectStore(name).get(key));
  // A write is reported done once committed; outbox writes ask for a flush to disk
  // ("strict"), so an entry survives the phone switching off right after the tap.
  async function write(name, fn) {
    const t = (await open()).transaction(name, "readwrite", { durability: name === "outbox" ? "strict" : "default" });
    fn(t.objectStore(name));
    return new Promise((resolve, reject) => {
      t.oncomplete = () => resolve();
      t.onerror = t.onabort = () => reject(t.error);
    });
  }
  // Read, change and write one record in one transaction (the page and the worker both write).
  const update = (name, key, fn) => write(name, (store) => {
    store.get(key).onsuccess = (e) => {
      const next = fn(e.target.result);
      if (next) store.put({ ...next, [KEYS[name]]: key });
    };
  });
  const meta = async (key) => (await get("meta", key)) || {};
  const setMeta = (key, value) => update("meta", key, (old) => ({ ...old, ...value }));

  const json = async (response) =>
    (response.headers.get("Content-Type") || "").startsWith("application/json")
      ? response.json().catch(() => null)
      : null;
  const request = (url, options = {}) => fetch(url, {
    credentials: "same-origin",
    cache: "no-store",
    redirect: "manual", // a redirect is never a receipt (an expired session, a captive portal)
    ...options,
    headers: { Accept: "application/json", ...options.headers },
    signal: AbortSignal.timeout ? AbortSignal.timeout(20000) : undefined,
  });
  const absolute = (url) => { const u = new URL(url, self.location.origin); u.hash = ""; return u.href; };

  async function entries() {
    return (await all("outbox")).sort((a, b) => a.createdAt - b.createdAt);
  }

  async function add(entry) {
    await write("outbox", (s) => s.put({ state: "waiting", error: "", attempts: 0, createdAt: Date.now(), ...entry }));
    changed();
  }

  async function discard(uuid) {
    await write("outbox", (s) => s.delete(uuid));
    changed();
  }

  // Back to waiting (after the rep fixed the cause, or a new time).
  async function retry(uuid, occurredAt) {
    await update("outbox", uuid, (e) => e && { ...e, state: "waiting", error: "", field: "", ...(occurredAt ? { occurredAt } : {}) });
    changed();
  }

  const words = (response) =>
    response.type === "opaqueredirect" ? "The server sent a redirect instead of a receipt"
      : `The server answered ${response.status} without a receipt`;

  // Where an outbox entry goes, what it says, and the saved pages it changes: a task
  // ticked done, a follow-up task and a check-out are kinds of their own; everything
  // else is an activity (a call with its outcome, a check-in with where the phone was).
  const contactPage = (e) => [`/contacts/${e.contactId}`];
  const SENDING = {
    "task-done": (e) => ({ path: "/api/tasks/done", pages: TASK_PAGES,
      body: { uuid: e.uuid, task_id: e.taskId, done_at: e.occurredAt } }),
    "follow-up": (e) => ({ path: "/api/tasks/follow-up", pages: [...TASK_PAGES, ...contactPage(e)],
      body: { uuid: e.uuid, contact_id: e.contactId, preset: e.preset, time_zone: e.timeZone, kind: e.activityKind } }),
    "check-out": (e) => ({ path: "/api/activities/check-out", pages: contactPage(e),
      body: { uuid: e.uuid, visit_uuid: e.visitUuid, ended_at: e.occurredAt } }),
  };
  const activity = (e) => ({ path: "/api/activities", pages: contactPage(e), body: {
    uuid: e.uuid, contact_id: e.contactId, kind: e.kind, body: e.body, occurred_at: e.occurredAt,
    ...(e.outcome ? { outcome: e.outcome } : {}),
    ...(e.latitude != null ? { latitude: e.latitude, longitude: e.longitude, accuracy_m: e.accuracy } : {}),
  } });
  const sending = (e) => (SENDING[e.kind] || activity)(e);

  // Send this user's waiting entries, oldest first; one batch at a time across the page
  // and the service worker. Resolves with { sent, problem }; problem is null, "offline",
  // "auth" (sign in to send) or "server" (will retry).
  async function flush() {
    const run = async () => {
      const waiting = (await entries()).filter((e) => e.state === "waiting");
      let problem = null;
      let detail = "";
      const sent = [];
      if (waiting.length) {
        let token;
        let user;
        try {
          const r = await request("/api/csrf");
          const data = await json(r);
          if (r.status === 401) problem = "auth";
          else if (!r.ok || !data || !data.csrf_token) { problem = "server"; detail = words(r); }
          else { token = data.csrf_token; user = data.user_id; }
        } catch { problem = "offline"; }
        for (const e of problem ? [] : waiting.filter((x) => x.userId === user)) {
          let r;
          let data;
          try {
            const { path, body } = sending(e);
            r = await request(path, {
              method: "POST",
              headers: { "Content-Type": "application/json", "X-CSRFToken": token },
              body: JSON.stringify(body),
            });
            data = await json(r);
          } catch { problem = "offline"; break; }
          const named = data && data.uuid === e.uuid;
          if (named && (r.status === 200 || r.status === 201) && data.status === "stored") {
            await write("outbox", (s) => s.delete(e.uuid));
            sent.push(e);
          } else if (named && [403, 404, 409, 422].includes(r.status)) {
            const field = data.errors ? Object.keys(data.errors)[0] : "";
            const error = data.error || Object.values(data.errors || {}).join(" ") || "The server refused this entry.";
            await update("outbox", e.uuid, (old) => old && { ...old, state: "failed", error, field });
          } else {
            problem = r.status === 401 ? "auth" : "server";
            detail = words(r);
            await update("outbox", e.uuid, (old) => old && { ...old, attempts: (old.attempts || 0) + 1 });
            break;
          }
        }
      }
      const now = new Date().toISOString();
      // lastSync: the last time the server took everything this user had waiting.
      const ok = waiting.length ? { lastSync: now } : {};
      await setMeta("sync", problem ? { problem, detail, at: now } : { problem: null, detail: "", at: now, ...ok });
      changed();
      // Within the batch, so nothing of it is still on its way when quiet() returns.
      const urls = sent.map((e) => sending(e).pages).flat();
      if (sent.length) await refresh([...new Set(urls)]).catch(() => {});
      return { sent: sent.length, problem };
    };
    return self.navigator.locks ? navigator.locks.request("fieldcrm-outbox", run) : run();
  }

  const cacheable = (r) => r && r.status === 200 && r.type === "basic" && !r.redirected &&
    (r.headers.get("Content-Type") || "").startsWith("text/html");

  // Keep a whole page for offline reading, stamped with the time it was saved; since: the
  // epoch when it was asked for (a sign-out in between means it is not kept).
  async function keep(url, response, extra = {}, since = epoch) {
    url = absolute(url);
    const body = await response.blob();
    if (body.size > LIMITS.pageBytes || since !== epoch) return;
    const savedAt = new Date().toISOString();
    const headers = new Headers(response.headers);
    headers.set("X-Saved-At", savedAt);
    const cache = await caches.open(PAGES);
    if (since !== epoch) return;
    await cache.put(url, new Response(body, { status: 200, headers }));
    await update("pages", url, (old) => ({ ...old, ...extra, bytes: body.size, savedAt, usedAt: Date.now() }));
    await trim();
    // The service worker keeps what the page needs beyond the shell (sw.js).
    if (self.Offline.pageAssets) await self.Offline.pageAssets(await body.text()).catch(() => {});
  }

  // A kept page, marked with when it was saved (app.js shows it), or null.
  async function saved(request) {
    const cached = await caches.match(request, { cacheName: PAGES, ignoreVary: true });
    if (!cached) return null;
    const at = cached.headers.get("X-Saved-At") || "";
    update("pages", absolute(request.url || request), (old) => old && { ...old, usedAt: Date.now() }).catch(() => {});
    const html = (await cached.text()).replace('<main id="main"', `<main id="main" data-saved-at="${at.replace(/[^\w:.-]/g, "")}"`);
    const headers = new Headers(cached.headers);
    headers.delete("Content-Length");
    return new Response(html, { status: 200, headers });
  }

  // The page's contact, for finding it offline (app.js, on every contact page).
  const seen = (url, contact) => update("pages", absolute(url), (old) => ({ ...old, contact, usedAt: Date.now() }));

  // Within LIMITS: other pages by last use and age, own contacts by count, then by bytes.
  async function trim() {
    const pages = (await all("pages")).sort((a, b) => (b.usedAt || 0) - (a.usedAt || 0));
    const old = Date.now() - LIMITS.recentDays * DAY;
    const drop = [];
    let recent = 0;
    let own = 0;
    let bytes = 0;
    for (const p of pages) {
      const over = p.own ? ++own > LIMITS.own : ++recent > LIMITS.recent || (p.usedAt || 0) < old;
      if (over || bytes + (p.bytes || 0) > LIMITS.bytes) drop.push(p.url);
      else bytes += p.bytes || 0;
    }
    if (!drop.length) return;
    const cache = await caches.open(PAGES);
    for (const url of drop) await cache.delete(url);
    await write("pages", (s) => drop.forEach((url) => s.delete(url)));
  }

  // Contacts whose page is kept, by name: what can be found with no signal.
  async function library() {
    const kept = new Set((await (await caches.open(PAGES)).keys()).map((r) => r.url));
    return (await all("pages"))
      .filter((p) => p.contact && kept.has(p.url))
      .map((p) => ({ ...p.contact, url: p.url, savedAt: p.savedAt }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  // Save the pages of the signed-in user's own contacts (at most every PREFETCH_EVERY,
  // one run at a time).
  let prefetching = null;
  const prefetch = () => (prefetching ||= fetchOwn().finally(() => { prefetching = null; }));
  async function fetchOwn() {
    const start = epoch;
    const last = await meta("prefetch");
    const owner = (await meta("owner")).id;
    if (last.userId === owner && Date.now() - (last.at || 0) < PREFETCH_EVERY) return;
    const r = await request("/api/offline/contacts");
    const data = r.ok && (await json(r));
    if (!data || data.user_id !== owner) return;
    const own = new Set(data.contacts.map((c) => absolute(c.url)));
    for (const p of await all("pages")) {
      if (p.own && !own.has(p.url)) await update("pages", p.url, (x) => x && { ...x, own: false });
    }
    for (const c of data.contacts.slice(0, LIMITS.own)) {
      if (start !== epoch) return;
      const page = await fetch(c.url, { credentials: "same-origin", redirect: "follow" }).catch(() => null);
      if (!cacheable(page)) continue;
      await keep(c.url, page, { own: true, contact: { id: c.id, name: c.name, company: c.company, phone: c.phone } }, start);
    }
    // Today and the task list too, kept like own contacts (never pushed out by recent pages).
    for (const path of TASK_PAGES) {
      if (start !== epoch) return;
      const page = await fetch(path, { credentials: "same-origin", redirect: "follow" }).catch(() => null);
      if (cacheable(page)) await keep(path, page, { own: true }, start);
    }
    if (start === epoch) await setMeta("prefetch", { at: Date.now(), userId: data.user_id });
  }

  // After entries were stored, refresh the kept pages they changed.
  async function refresh(paths) {
    const start = epoch;
    for (const path of paths) {
      const url = absolute(path);
      if (!(await get("pages", url))) continue;
      const page = await fetch(url, { credentials: "same-origin" }).catch(() => null);
      if (cacheable(page)) await keep(url, page, {}, start);
    }
  }

  // Forget the kept pages and their index (signing out, or another user signing in); the
  // outbox stays, each entry with its user.
  async function forget() {
    epoch += 1;
    await caches.delete(PAGES);
    await write("pages", (s) => s.clear());
    await write("meta", (s) => s.delete("prefetch"));
  }

  // Forget, and let nothing of this app be on its way (before signing out: an answer
  // arriving after the sign-out would set the session's cookie again).
  async function quiet() {
    await forget();
    await (prefetching || Promise.resolve()).catch(() => {});
    if (self.navigator.locks) await navigator.locks.request("fieldcrm-outbox", () => {});
  }

  // Who uses this phone now: a different user than last time starts with no kept pages.
  async function owner(id) {
    const last = (await meta("owner")).id;
    if (last !== id) {
      if (last !== undefined) await forget();
      await setMeta("owner", { id });
    }
  }

  self.Offline = {
    LIMITS, PAGES, add, discard, retry, entries, flush, keep, saved, seen, library,
    prefetch, forget, quiet, owner, meta, setMeta, cacheable, absolute,
  };
})();
