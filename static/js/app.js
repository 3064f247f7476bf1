/* Field CRM page script: the offline side of every page, wired here (static/js/offline.js
   keeps the rules; dom.js, search.js, sync.js, outbox-view.js and log.js each do one
   part, nav.js the CSRF header and the way back to a long list; signout.js is the
   account page's own). What this page
   knows lives here alone: whether the outbox works on it and whose it is. It routes the
   forms, finds saved contacts with no signal, marks saved copies with their age, and
   turns a whole-page request with no answer into a real navigation. */
(() => {
  "use strict";
  const O = self.Offline;
  const { $, h, online, signedIn, local, localTimes, ago } = self.Dom;
  const { search } = self.Search;
  const SIGN_OUT = ["/logout", "/account/sign-out-everywhere"];
  let enabled = false; // the outbox works here (IndexedDB opens): else forms post as before
  let userId = null;

  const render = async () => { if (enabled) await self.OutboxView.bar(userId, sync); };
  const renderTimeline = async () => { if (enabled) await self.OutboxView.timeline(userId); };
  const sender = self.Sync.sender({
    ready: () => enabled,
    idle: render,
    after: async () => { await render(); await renderTimeline(); },
  });
  const sync = () => sender.sync();

  // No answer at all (no signal) to a whole-page request (a boosted link, or Back):
  // navigate for real, so the service worker can serve its cached copy or the offline
  // page instead of leaving the tap unanswered. A search looks in the saved contacts.
  document.addEventListener("htmx:error", (evt) => {
    const ctx = evt.detail && evt.detail.ctx;
    const req = ctx && ctx.request;
    if (!req || ctx.response || req.method !== "GET") return;
    if (req.headers["HX-Request-Type"] === "full") window.location.href = req.action;
    else if (enabled && $("#contact-list") && $("#q")) search($("#contact-list"), $("#q").value);
  });

  document.addEventListener("submit", (evt) => {
    const form = evt.target;
    const logForm = form.matches("form.log[data-contact-id]");
    const followUp = form.matches("form#follow-up");
    // With signal a check-out posts as it is (the page shows the visit's duration).
    const checkOut = !online() && form.matches("form.check-out[data-visit-uuid]");
    // signout.js is the account page's own (data-script): until it is there, a sign-out
    // posts as it is (the service worker still forgets the saved pages).
    const signOutForm = Boolean(self.SignOut) && SIGN_OUT.includes(new URL(form.action, location.href).pathname);
    const outboxForm = logForm || followUp || checkOut;
    const offlinePost = !outboxForm && !online() && form.method === "post";
    if (!enabled || !(outboxForm || signOutForm || offlinePost)) return;
    // Capture phase: htmx never sees it, and the browser does not post the form.
    evt.preventDefault();
    evt.stopPropagation();
    if (offlinePost) {
      // Only entries wait in the outbox; anything else says so instead of failing.
      const note = $(".offline-post", form) || form.appendChild(h("p", { className: "error offline-post", role: "alert" }));
      note.textContent = "No signal: this needs a connection. Nothing was sent; try again when you are back online.";
    } else if (signOutForm) {
      self.SignOut.signOut(form, { userId, sender });
    } else if (followUp) {
      self.LogForm.followUp(form, evt.submitter, { userId, sync });
    } else if (checkOut) {
      self.LogForm.checkOut(form.dataset.visitUuid, userId, form);
    } else {
      self.LogForm.queue(form, evt.submitter, { userId, sync, timeline: renderTimeline });
    }
  }, true);

  // What this page adds: the saved-copy notice, the contact kept for finding offline.
  async function page() {
    localTimes();
    if (!enabled) return;
    const main = $("main");
    const savedAt = main && main.dataset.savedAt;
    if (savedAt && !$(".saved-copy")) {
      main.prepend(h("p", { className: "saved-copy", textContent: `Saved copy from ${local.format(new Date(savedAt))} (${ago(savedAt)}).` }));
    }
    const contact = $("article.contact[data-contact-id]");
    if (contact && !savedAt) {
      const d = contact.dataset;
      await O.seen(`/contacts/${d.contactId}`, { id: Number(d.contactId), name: d.name, company: d.company, phone: d.phone });
    }
    const list = $("#contact-list");
    const q = new URLSearchParams(location.search).get("q");
    if (list && savedAt && q) search(list, q);
    const saved = $("#saved-contacts");
    if (saved) {
      saved.hidden = false;
      const input = $("#saved-q", saved);
      input.oninput = () => search($("#saved-list"), input.value);
      search($("#saved-list"), input.value);
    }
    await render();
    await renderTimeline();
  }

  async function start() {
    try {
      await O.meta("owner");
      enabled = true;
    } catch {
      return localTimes();
    }
    const live = !$("main[data-saved-at]");
    const id = signedIn();
    if (id && live) {
      await O.owner(id);
      persist();
    }
    userId = id || (await O.meta("owner")).id || null;
    await page();
    if (id && live && online()) {
      sync();
      // Once the page has settled: saving the own contacts never competes with showing it.
      setTimeout(() => sender.stopped() || self.Sync.prefetch(), 2000);
    }
  }

  // Ask the browser to keep this site's storage (Safari deletes it after 7 days unused
  // unless the app is installed); at most once a week, as Firefox asks the person.
  async function persist() {
    if (!navigator.storage || !navigator.storage.persist || (await navigator.storage.persisted())) return;
    const asked = await O.meta("persist");
    if (Date.now() - (asked.at || 0) < 7 * 864e5) return;
    await O.setMeta("persist", { at: Date.now(), granted: await navigator.storage.persist() });
  }

  if (O && self.indexedDB) {
    document.addEventListener("DOMContentLoaded", start);
    document.addEventListener("htmx:after:swap", () => page().catch(() => {}));
    window.addEventListener("online", () => sync());
    // Another script put an entry in the outbox (tasks.js: a task ticked done).
    document.addEventListener("fieldcrm:queued", () => sync());
    window.addEventListener("offline", () => render());
    document.addEventListener("visibilitychange", () => document.visibilityState === "visible" && sync());
    const input = () => $("#q") && !online() && enabled && search($("#contact-list"), $("#q").value);
    document.addEventListener("input", (evt) => evt.target.id === "q" && input());
    if (self.BroadcastChannel) {
      new BroadcastChannel("fieldcrm-sync").onmessage = () => { render(); renderTimeline(); };
    }
  } else {
    document.addEventListener("DOMContentLoaded", localTimes);
    document.addEventListener("htmx:after:swap", localTimes);
  }
})();
