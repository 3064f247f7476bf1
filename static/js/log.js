/* Field CRM log form: an entry goes into the outbox first (it survives a closed app or a
   restart), shows on the timeline as waiting, then is sent at once when there is signal;
   the form says what became of it. A follow-up chip's task takes the same way. */
(() => {
  "use strict";
  const O = self.Offline;
  const { $, h, KINDS, online, uuid } = self.Dom;

  // A status line (its own class `base`) saying text, as a flash of kind.
  function tell(line, base, text, kind) {
    line.className = text ? `${base} flash flash-${kind}` : base;
    line.textContent = text;
  }

  function say(form, text, kind) {
    const status = $(".log-status", form);
    if (status) tell(status, "log-status", text, kind);
  }

  // Send the outbox now; what is left of the entry `uuid` afterwards (null: stored).
  async function afterSync(uuid, sync) {
    await sync();
    return (await O.entries()).find((e) => e.uuid === uuid) || null;
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

  // The entry of `form`, of the kind its `button` names, for the user `userId`; `sync`
  // sends the outbox, `timeline` shows what waits on this contact's timeline.
  async function queue(form, button, { userId, sync, timeline }) {
    const kind = button && button.value;
    const label = KINDS[kind] || "Entry";
    const text = form.elements.body.value.trim();
    // A new problem replaces what was said about the last entry.
    say(form, "", "info");
    if (kind === "note" && !text) return bodyError(form, "Write the note first.");
    bodyError(form, "");
    // The time chosen in the form (static/js/nearby.js), else now.
    const occurredAt = self.LogWhen ? self.LogWhen(form) : new Date().toISOString();
    if (!occurredAt) return say(form, "Give the date and time it happened.", "error");
    // How a call went, when a chip says so (kept with the entry, sent with it).
    const picked = form.querySelector("input[name=outcome]:checked");
    const entry = {
      uuid: uuid(),
      userId,
      contactId: Number(form.dataset.contactId),
      contactName: form.dataset.contactName,
      author: form.dataset.author,
      kind,
      body: text,
      occurredAt,
      ...(kind === "call" && picked ? { outcome: picked.value } : {}),
    };
    // A new UUID for the form, so no two entries ever share one (even from a saved copy).
    form.elements.uuid.value = uuid();
    form.elements.body.value = "";
    if (picked) picked.checked = false;
    if (form.elements.when) form.elements.when.value = "now";
    try {
      await O.add(entry);
    } catch {
      form.elements.body.value = text;
      return say(form, `This phone could not keep the ${label.toLowerCase()}: try again.`, "error");
    }
    await timeline();
    // The follow-up chips, for this entry (a new key: each chip form makes one task).
    const chips = $("#follow-up");
    if (chips && chips.elements) {
      chips.elements.uuid.value = uuid();
      chips.elements.kind.value = kind;
      chips.hidden = false;
    }
    const later = `${label} saved on this phone; it will be sent when there is signal.`;
    if (!online()) {
      self.Sync.background();
      return say(form, later, "info");
    }
    say(form, `${label} saved on this phone; sending…`, "info");
    const left = await afterSync(entry.uuid, sync);
    if (!left) say(form, `${label} logged.`, "success");
    else if (left.state === "failed") say(form, `${label} not sent: ${left.error}`, "error");
    else say(form, later, "info");
  }

  // A follow-up chip: the task goes through the outbox too, once per chip form (its
  // key), and the chips say what became of it.
  async function followUp(form, button, { userId, sync }) {
    const preset = button && button.value;
    const label = button ? button.textContent.trim() : "";
    const entry = {
      uuid: form.elements.uuid.value,
      userId,
      contactId: Number(form.elements.contact_id.value),
      contactName: ($("form.log[data-contact-name]") || { dataset: {} }).dataset.contactName || "",
      kind: "follow-up",
      label: "Follow-up",
      preset,
      activityKind: form.elements.kind.value,
      timeZone: Intl.DateTimeFormat().resolvedOptions().timeZone || "",
      occurredAt: new Date().toISOString(),
    };
    const note = $(".follow-up-status", form) || form.appendChild(h("p", { className: "follow-up-status", role: "status" }));
    const show = (text, kind) => tell(note, "follow-up-status", text, kind);
    try {
      await O.add(entry);
    } catch {
      return show("This phone could not keep the follow-up: try again.", "error");
    }
    form.elements.uuid.value = uuid(); // another chip makes another task
    show(`Follow-up (${label.toLowerCase()}) saved on this phone; it will be sent when there is signal.`, "info");
    if (!online()) return self.Sync.background();
    const left = await afterSync(entry.uuid, sync);
    if (!left) show(`Follow-up task added (${label.toLowerCase()}).`, "success");
    else if (left.state === "failed") show(`Follow-up not sent: ${left.error}`, "error");
  }

  // Check out of the visit `visitUuid` (stored, or still waiting in the outbox: the
  // outbox sends in order, so the visit goes first); `form`, if given, says it is done.
  async function checkOut(visitUuid, userId, form) {
    const log = $("form.log[data-contact-id]");
    const entry = {
      uuid: uuid(),
      userId,
      contactId: log ? Number(log.dataset.contactId) : null,
      contactName: log ? log.dataset.contactName : "",
      kind: "check-out",
      label: "Check-out",
      visitUuid,
      occurredAt: new Date().toISOString(),
    };
    try {
      await O.add(entry);
    } catch {
      if (form) form.append(h("p", { className: "error", textContent: "This phone could not keep the check-out: try again." }));
      return;
    }
    if (form) form.replaceWith(h("p", { className: "check-out-status", role: "status", textContent: "Checked out on this phone; it will be sent when there is signal." }));
    document.dispatchEvent(new CustomEvent("fieldcrm:queued"));
  }

  self.LogForm = Object.freeze({ queue, followUp, checkOut });
})();
