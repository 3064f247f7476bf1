/* Field CRM outbox on the page: the sync bar (online or not, entries waiting, the last
   sync, failures in words with a way to fix, resend or discard each) and this contact's
   entries still waiting, at the top of its timeline. */
(() => {
  "use strict";
  const O = self.Offline;
  const { $, h, fill, KINDS, online, signedIn, plural, local, when } = self.Dom;

  // The sync bar, for the user `userId` (null: every entry), with `sync` to send again.
  async function bar(userId, sync) {
    const box = $("#sync");
    if (!box) return;
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
    const status = $("#sync-status", box);
    if (status.textContent !== words) status.textContent = words;
    box.dataset.state = failed.length || auth ? "alert" : online() ? (waiting ? "busy" : "ok") : "offline";
    // Shown only when there is something to say; all sent and online, it keeps its words
    // (the last sync) for whoever asks, out of the way.
    box.hidden = !(waiting || failed.length || auth || !online() || all.length > mine.length);

    fill($("#sync-actions", box),
      auth && location.pathname !== "/login"
        ? h("a", { className: "button small", href: `/login?next=${encodeURIComponent(location.pathname)}`, textContent: "Sign in" })
        : null,
      waiting && !auth && online() ? h("button", { type: "button", className: "small", textContent: "Retry", onclick: () => sync() }) : null);

    // Folded away (it would cover the page), and rebuilt only when it changes, so a time
    // being fixed is not wiped by a re-render.
    const details = $("#sync-details", box);
    const list = $("#sync-failed", box);
    const key = JSON.stringify(failed.map((e) => [e.uuid, e.error]));
    details.hidden = !failed.length;
    document.body.dataset.sync = failed.length ? "failed" : "";
    if (list.dataset.key === key) return;
    list.dataset.key = key;
    $("#sync-summary", box).textContent = `Why ${failed.length === 1 ? "was 1 entry" : `were ${failed.length} entries`} not sent?`;
    fill(list, ...failed.map((e) => failedItem(e, sync)));
  }

  const localInput = (iso) => {
    const d = new Date(iso);
    return new Date(d - d.getTimezoneOffset() * 6e4).toISOString().slice(0, 16);
  };

  function failedItem(e, sync) {
    const time = e.field === "occurred_at"
      ? h("input", { type: "datetime-local", value: localInput(e.occurredAt), id: `t-${e.uuid}` })
      : null;
    const resend = async () => {
      const at = time && time.value ? new Date(time.value).toISOString() : undefined;
      await O.retry(e.uuid, at);
      await sync();
    };
    const discard = async () => {
      if (!window.confirm(`Discard this ${(e.label || KINDS[e.kind] || "entry").toLowerCase()} for ${e.contactName}? It was never stored.`)) return;
      await O.discard(e.uuid);
      const row = $(`#timeline-entries li[data-uuid="${e.uuid}"]`);
      if (row) row.remove();
    };
    return h("li", { className: "sync-item" },
      h("p", {}, h("strong", { textContent: `${e.label || KINDS[e.kind] || e.kind} for ${e.contactName}, ${local.format(new Date(e.occurredAt))}: ` }),
        h("span", { className: "sync-error", textContent: e.error })),
      time ? h("label", { htmlFor: time.id, textContent: "When it happened" }) : null,
      time,
      h("div", { className: "actions" },
        h("button", { type: "button", className: "small", textContent: time ? "Send with this time" : "Retry", onclick: resend }),
        h("button", { type: "button", className: "small danger", textContent: "Discard", onclick: discard })));
  }

  // A check-in still waiting to send can be checked out of at once, through the outbox.
  function checkOutOf(e, out) {
    if (e.kind !== "visit" || e.latitude == null) return null;
    if (out.has(e.uuid)) return h("p", { className: "check-out-status", textContent: "Checked out · waiting to send" });
    return h("button", {
      type: "button", className: "small", textContent: "Check out",
      onclick: async () => { await self.LogForm.checkOut(e.uuid, e.userId); await timeline(e.userId); },
    });
  }

  function entryRow(e, out = new Set()) {
    const t = h("time", { dateTime: e.occurredAt, textContent: local.format(new Date(e.occurredAt)) });
    t.dataset.local = "";
    const li = h("li", { className: `entry entry-${e.kind} entry-${e.state}` },
      h("p", { className: "entry-head" },
        h("span", { className: "kind", textContent: KINDS[e.kind] || e.kind }), " ", t,
        e.author ? h("span", { className: "by", textContent: ` · ${e.author}` }) : null, " ",
        h("span", { className: "sync-tag", textContent: e.state === "failed" ? `Not sent: ${e.error}` : "Waiting to send" })),
      e.body ? h("p", { className: "entry-body", textContent: e.body }) : null,
      checkOutOf(e, out));
    li.dataset.uuid = e.uuid;
    li.dataset.pending = "";
    return li;
  }

  // Entries of this contact still in the outbox (of the user `userId`; null: every entry).
  async function timeline(userId) {
    const form = $("form.log[data-contact-id]");
    if (!form) return;
    const id = Number(form.dataset.contactId);
    const mine = (await O.entries()).filter((e) => e.contactId === id && (!userId || e.userId === userId));
    // Follow-ups are tasks and check-outs end a visit: neither is a row of its own.
    const out = new Set(mine.filter((e) => e.kind === "check-out").map((e) => e.visitUuid));
    const pending = mine
      .filter((e) => e.kind !== "follow-up" && e.kind !== "check-out")
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
      if (shown) shown.replaceWith(entryRow(e, out));
      else list.prepend(entryRow(e, out));
    }
  }

  self.OutboxView = Object.freeze({ bar, timeline });
})();
