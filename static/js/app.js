/* Field CRM page script: CSRF header on htmx requests, the service worker, the way out to
   the offline page, and the offline side of every page (static/js/offline.js keeps the
   rules): the log form writes to the outbox first and then sends, the sync bar, entries
   waiting on the timeline, saved copies marked with their age, finding saved contacts
   with no signal, and the warning when signing out with entries unsent. */
(() => {
  "use strict";
  const O = self.Offline;
  const $ = (sel, root = document) => root.querySelector(sel);
  const kids = (list) => list.filter((k) => k != null && k !== false);
  const h = (tag, props, ...children) => {
    const el = Object.assign(document.createElement(tag), props);
    el.append(...kids(children));
    return el;
  };
  const fill = (el, ...children) => el.replaceChildren(...kids(children));
  // The kinds of entry and their names, as the server defines them.
  const KINDS = JSON.parse(($('meta[name="activity-kinds"]') || {}).content || "{}");
  const SIGN_OUT = ["/logout", "/account/sign-out-everywhere"];
  const online = () => navigator.onLine;
  const signedIn = () => Number(($('meta[name="user-id"]') || {}).content) || null;
  const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;
  const uuid = () => (crypto.randomUUID ? crypto.randomUUID()
    : "10000000-1000-4000-8000-100000000000".replace(/[018]/g, (c) =>
      (c ^ (crypto.getRandomValues(new Uint8Array(1))[0] & (15 >> (c / 4)))).toString(16)));
  let enabled = false; // the outbox works here (IndexedDB opens): else forms post as before
  let userId = null;

  document.addEventListener("htmx:config:request", (evt) => {
    const meta = document.querySelector('meta[name="csrf-token"]');
    if (meta) evt.detail.ctx.request.headers["X-CSRFToken"] = meta.content;
  });

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

  // Times come from the server in UTC; show them in the phone's own zone and language.
  const local = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  const clock = new Intl.DateTimeFormat(undefined, { timeStyle: "short" });
  const when = (iso) => {
    const d = new Date(iso);
    return (d.toDateString() === new Date().toDateString() ? clock : local).format(d);
  };
  const localTimes = () => {
    for (const t of document.querySelectorAll("time[datetime]:not([data-local])")) {
      t.textContent = local.format(new Date(t.dateTime));
      t.dataset.local = "";
    }
  };
  const ago = (iso) => {
    const m = Math.round((Date.now() - new Date(iso)) / 6e4);
    if (m < 1) return "just now";
    if (m < 60) return `${m} min ago`;
    return m < 2880 ? `${Math.round(m / 60)} h ago` : `${Math.round(m / 1440)} days ago`;
  };

  // The sync bar: online or not, entries waiting, the last sync, and failures in words.
  async function render() {
    const bar = $("#sync");
    if (!bar || !enabled) return;
    const all = await O.entries();
    const state = await O.meta("sync");
    const mine = all.filter((e) => !userId || e.userId === userId);
    const waiting = mine.filter((e) => e.state === "waiting").length;
    const failed = mine.filter((e) => e.state === "failed");
    // The server said the session ended, or this is the sign-in page itself.
    const auth = waiting && (state.problem === "auth" || (!signedIn() && location.pathname === "/login"));
    const parts = [online() ? "Online" : "Offline",
      waiting ? `${plural(waiting, "entry", "entries")} waiting to send` : "nothing waiting to send"];
    if (failed.length) parts.push(`${failed.length} not sent`);
    if (state.lastSync) parts.push(`last sync ${when(state.lastSync)}`);
    if (all.length > mine.length) parts.push(`${plural(all.length - mine.length, "entry", "entries")} of another account`);
    let words = parts.join(" · ") + ".";
    if (auth) words += ` Sign in to send ${waiting === 1 ? "it" : "them"}.`;
    else if (waiting && online() && state.problem === "server") words += ` ${state.detail}; trying again soon.`;
    else if (waiting && online() && state.problem === "offline") words += " The server cannot be reached; trying again soon.";
    const status = $("#sync-status", bar);
    if (status.textContent !== words) status.textContent = words;
    bar.dataset.state = failed.length || auth ? "alert" : online() ? (waiting ? "busy" : "ok") : "offline";
    // Shown only when there is something to say; all sent and online, it keeps its words
    // (the last sync) for whoever asks, out of the way.
    bar.hidden = !(waiting || failed.length || auth || !online() || all.length > mine.length);

    fill($("#sync-actions", bar),
      auth && location.pathname !== "/login"
        ? h("a", { className: "button small", href: `/login?next=${encodeURIComponent(location.pathname)}`, textContent: "Sign in" })
        : null,
      waiting && !auth && online() ? h("button", { type: "button", className: "small", textContent: "Retry", onclick: () => sync() }) : null);

    // Folded away (it would cover the page), and rebuilt only when it changes, so a time
    // being fixed is not wiped by a re-render.
    const details = $("#sync-details", bar);
    const list = $("#sync-failed", bar);
    const key = JSON.stringify(failed.map((e) => [e.uuid, e.error]));
    details.hidden = !failed.length;
    document.body.dataset.sync = failed.length ? "failed" : "";
    if (list.dataset.key === key) return;
    list.dataset.key = key;
    $("#sync-summary", bar).textContent = `Why ${failed.length === 1 ? "was 1 entry" : `were ${failed.length} entries`} not sent?`;
    fill(list, ...failed.map(failedItem));
  }

  const localInput = (iso) => {
    const d = new Date(iso);
    return new Date(d - d.getTimezoneOffset() * 6e4).toISOString().slice(0, 16);
  };

  function failedItem(e) {
    const time = e.field === "occurred_at"
      ? h("input", { type: "datetime-local", value: localInput(e.occurredAt), id: `t-${e.uuid}` })
      : null;
    const resend = async () => {
      const at = time && time.value ? new Date(time.value).toISOString() : undefined;
      await O.retry(e.uuid, at);
      await sync();
    };
    const discard = async () => {
      if (!window.confirm(`Discard this ${(KINDS[e.kind] || "entry").toLowerCase()} for ${e.contactName}? It was never stored.`)) return;
      await O.discard(e.uuid);
      const row = $(`#timeline-entries li[data-uuid="${e.uuid}"]`);
      if (row) row.remove();
    };
    return h("li", { className: "sync-item" },
      h("p", {}, h("strong", { textContent: `${KINDS[e.kind] || e.kind} for ${e.contactName}, ${local.format(new Date(e.occurredAt))}: ` }),
        h("span", { className: "sync-error", textContent: e.error })),
      time ? h("label", { htmlFor: time.id, textContent: "When it happened" }) : null,
      time,
      h("div", { className: "actions" },
        h("button", { type: "button", className: "small", textContent: time ? "Send with this time" : "Retry", onclick: resend }),
        h("button", { type: "button", className: "small danger", textContent: "Discard", onclick: discard })));
  }

  // Entries of this contact still in the outbox, at the top of its timeline.
  function entryRow(e) {
    const t = h("time", { dateTime: e.occurredAt, textContent: local.format(new Date(e.occurredAt)) });
    t.dataset.local = "";
    const li = h("li", { className: `entry entry-${e.kind} entry-${e.state}` },
      h("p", { className: "entry-head" },
        h("span", { className: "kind", textContent: KINDS[e.kind] || e.kind }), " ", t,
        e.author ? h("span", { className: "by", textContent: ` · ${e.author}` }) : null, " ",
        h("span", { className: "sync-tag", textContent: e.state === "failed" ? `Not sent: ${e.error}` : "Waiting to send" })),
      e.body ? h("p", { className: "entry-body", textContent: e.body }) : null);
    li.dataset.uuid = e.uuid;
    li.dataset.pending = "";
    return li;
  }

  async function renderTimeline() {
    const form = $("form.log[data-contact-id]");
    if (!form || !enabled) return;
    const id = Number(form.dataset.contactId);
    const pending = (await O.entries())
      .filter((e) => e.contactId === id && (!userId || e.userId === userId))
      .sort((a, b) => (a.occurredAt < b.occurredAt ? -1 : 1));
    const left = new Set(pending.map((e) => e.uuid));
    // Shown as waiting and gone from the outbox: the server took it.
    for (const li of document.querySelectorAll("#timeline-entries li[data-pending]")) {
      if (left.has(li.dataset.uuid)) continue;
      li.removeAttribute("data-pending");
      li.classList.remove("entry-waiting", "entry-failed");
      li.querySelector(".sync-tag").remove();
    }
    let list = $("#timeline-entries");
    for (const e of pending) {
      const shown = list && list.querySelector(`li[data-uuid="${e.uuid}"]`);
      if (shown && !("pending" in shown.dataset)) continue; // the server's own row
      if (!list) {
        list = h("ol", { className: "timeline", id: "timeline-entries" });
        const empty = $("#timeline > .empty");
        if (empty) empty.replaceWith(list);
        else $("#timeline").append(list);
      }
      if (shown) shown.replaceWith(entryRow(e));
      else list.prepend(entryRow(e));
    }
  }

  function say(form, text, kind) {
    const status = $(".log-status", form);
    if (!status) return;
    status.className = text ? `log-status flash flash-${kind}` : "log-status";
    status.textContent = text;
  }

  function bodyError(form, text) {
    const body = form.elements.body;
    let error = $("#log-body-error", form);
    if (!text) {
      body.removeAttribute("aria-invalid");
      if (error) error.remove();
      return;
    }
    if (!error) body.after((error = h("p", { className: "error", id: "log-body-error" })));
    error.textContent = text;
    body.setAttribute("aria-invalid", "true");
    body.setAttribute("aria-describedby", "log-body-error");
    body.focus();
  }

  // The log form: into the outbox first (it survives a closed app or a restart), shown on
  // the timeline as waiting, then sent at once when there is signal.
  async function queue(form, button) {
    const kind = button && button.value;
    const label = KINDS[kind] || "Entry";
    const text = form.elements.body.value.trim();
    // A new problem replaces what was said about the last entry.
    say(form, "", "info");
    if (kind === "note" && !text) return bodyError(form, "Write the note first.");
    bodyError(form, "");
    const entry = {
      uuid: uuid(),
      userId,
      contactId: Number(form.dataset.contactId),
      contactName: form.dataset.contactName,
      author: form.dataset.author,
      kind,
      body: text,
      occurredAt: new Date().toISOString(),
    };
    // A new UUID for the form, so no two entries ever share one (even from a saved copy).
    form.elements.uuid.value = uuid();
    form.elements.body.value = "";
    try {
      await O.add(entry);
    } catch {
      form.elements.body.value = text;
      return say(form, `This phone could not keep the ${label.toLowerCase()}: try again.`, "error");
    }
    await renderTimeline();
    const later = `${label} saved on this phone; it will be sent when there is signal.`;
    if (!online()) {
      backgroundSync();
      return say(form, later, "info");
    }
    say(form, `${label} saved on this phone; sending…`, "info");
    await sync();
    const left = (await O.entries()).find((e) => e.uuid === entry.uuid);
    if (!left) say(form, `${label} logged.`, "success");
    else if (left.state === "failed") say(form, `${label} not sent: ${left.error}`, "error");
    else say(form, later, "info");
  }

  // Send what waits: now, on `online`, at every page load, and again with a backoff.
  let timer = null;
  let failures = 0;
  let running = null;
  let next = null;
  let leaving = false; // signing out: nothing more is sent from this page
  function sync() {
    if (!enabled || leaving || !signedIn() || !online()) return render();
    // A batch under way may have started before the reason to send again: run one more.
    if (running) return (next ||= running.then(() => { next = null; return sync(); }));
    running = (async () => {
      try {
        const { problem } = await O.flush();
        clearTimeout(timer);
        if (problem === "server" || problem === "offline") {
          failures += 1;
          timer = setTimeout(sync, Math.min(300, 5 * 3 ** (failures - 1)) * 1000);
          backgroundSync();
        } else {
          failures = 0;
        }
      } catch {
        // IndexedDB refused: the entries stay where they are, the bar says what waits.
      }
      running = null;
      await render();
      await renderTimeline();
    })();
    return running;
  }

  const worker = () => ("serviceWorker" in navigator ? navigator.serviceWorker.ready : Promise.reject());
  // Where the browser has Background Sync, the worker sends the outbox even if the app is closed.
  const backgroundSync = () => worker().then((r) => r.sync && r.sync.register("outbox")).catch(() => {});

  // Contacts saved on this phone, found by name, company or phone digits with no signal,
  // with accents folded as the server folds them ("orsted" finds Ørsted).
  const LETTERS = { ø: "o", æ: "ae", œ: "oe", ł: "l", đ: "d", ð: "d", þ: "th", ß: "ss", ı: "i" };
  const fold = (s) => s.normalize("NFKD").replace(/\p{M}/gu, "").toLowerCase().replace(/[øæœłđðþßı]/g, (c) => LETTERS[c]);
  async function search(container, query) {
    const terms = fold(query).split(/\s+/).filter(Boolean);
    const found = (await O.library()).filter((c) => {
      const phone = (c.phone || "").replace(/\D/g, "");
      const hay = fold(`${c.name} ${c.company || ""} ${c.phone || ""} ${phone}`);
      return terms.every((t) => hay.includes(t) || (t.replace(/\D/g, "").length > 2 && phone.includes(t.replace(/\D/g, ""))));
    });
    const row = (c) => h("li", { className: "row" },
      h("a", { className: "row-main", href: c.url },
        h("span", { className: "row-title", textContent: c.name }),
        h("span", { className: "row-sub", textContent: c.company || "" })),
      c.phone ? h("a", { className: "button small call", href: `tel:${c.phone.replace(/\s/g, "")}`, textContent: "Call" }) : null);
    fill(container,
      h("p", { className: "offline-note", textContent: `No signal: ${plural(found.length, "contact", "contacts")} saved on this phone${query ? ` match “${query}”` : ""}.` }),
      found.length ? h("ul", { className: "rows" }, ...found.map(row)) : null);
  }

  // The worker forgets the saved pages and finishes what it has on the way.
  const workerQuiet = () => new Promise((resolve) => {
    const sw = navigator.serviceWorker && navigator.serviceWorker.controller;
    if (!sw) return resolve();
    const channel = new MessageChannel();
    channel.port1.onmessage = resolve;
    sw.postMessage("quiet", [channel.port2]);
    setTimeout(resolve, 5000);
  });

  async function signOut(form) {
    // Nothing may be on its way when the sign-out lands: a later answer would bring the
    // session's cookie back and undo it.
    const go = async () => {
      leaving = true;
      clearTimeout(timer);
      await Promise.all([O.quiet().catch(() => {}), workerQuiet()]);
      form.submit();
    };
    let mine = [];
    try {
      mine = (await O.entries()).filter((e) => e.userId === userId);
    } catch {
      return go();
    }
    if (!mine.length) return go();
    const box = $(".signout-warning", form) || h("div", { className: "signout-warning", role: "alert" });
    const tell = (text) => fill(box,
      h("p", { textContent: text }),
      h("p", { textContent: "Keep them on this phone and they are sent the next time you sign in here." }),
      h("div", { className: "actions" },
        h("button", { type: "button", className: "primary", textContent: "Send them now", onclick: send }),
        h("button", { type: "button", textContent: "Keep them and sign out", onclick: go }),
        h("button", { type: "button", textContent: "Cancel", onclick: () => box.remove() })));
    const send = async () => {
      await sync();
      mine = (await O.entries()).filter((e) => e.userId === userId);
      if (!mine.length) return go();
      tell(`${plural(mine.length, "entry is", "entries are")} still not sent. ${$("#sync-status").textContent}`);
    };
    tell(`${plural(mine.length, "entry has", "entries have")} not been sent yet.`);
    form.append(box);
  }

  document.addEventListener("submit", (evt) => {
    const form = evt.target;
    const logForm = form.matches("form.log[data-contact-id]");
    const signOutForm = SIGN_OUT.includes(new URL(form.action, location.href).pathname);
    const offlinePost = !logForm && !online() && form.method === "post";
    if (!enabled || !(logForm || signOutForm || offlinePost)) return;
    // Capture phase: htmx never sees it, and the browser does not post the form.
    evt.preventDefault();
    evt.stopPropagation();
    if (offlinePost) {
      // Only entries wait in the outbox; anything else says so instead of failing.
      const note = $(".offline-post", form) || form.appendChild(h("p", { className: "error offline-post", role: "alert" }));
      note.textContent = "No signal: this needs a connection. Nothing was sent; try again when you are back online.";
    } else if (signOutForm) {
      signOut(form);
    } else {
      queue(form, evt.submitter);
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
      setTimeout(() => leaving || worker().then((r) => r.active && r.active.postMessage("prefetch")).catch(() => {}), 2000);
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

  // Back to a long list: the list reloads as far as it was scrolled (?upto= the last row
  // loaded), and the page scrolls to where it was (htmx fetches the page again on Back).
  const remember = () => history.replaceState({ ...(history.state || {}), scrollY: window.scrollY }, "");
  let scrolled = null;
  window.addEventListener("scroll", () => { clearTimeout(scrolled); scrolled = setTimeout(remember, 150); }, { passive: true });
  document.addEventListener("htmx:before:request", remember);
  let restoring = null;
  document.addEventListener("htmx:before:history:restore", () => { restoring = (history.state || {}).scrollY; });
  const markUpto = () => {
    const list = $("ul[data-page-size]");
    if (!list) return;
    const rows = list.querySelectorAll(":scope > li[data-id]");
    const url = new URL(location.href);
    if (rows.length > Number(list.dataset.pageSize)) url.searchParams.set("upto", rows[rows.length - 1].dataset.id);
    else url.searchParams.delete("upto");
    if (url.href !== location.href) history.replaceState(history.state, "", url);
  };
  document.addEventListener("htmx:after:swap", () => {
    markUpto();
    if (restoring != null) window.scrollTo(0, restoring);
    restoring = null;
  });

  if ("serviceWorker" in navigator) {
    window.addEventListener("load", () => {
      navigator.serviceWorker.register("/sw.js").catch(() => {});
    });
  }
})();
