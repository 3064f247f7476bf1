/* Field CRM, the rep in the field: where the phone is (asked only after a tap) for
   Nearby, a check-in and a contact's coordinates; and the log form's time, which the
   offline outbox takes as the entry's own (log.js asks LogWhen). */
(() => {
  "use strict";
  if (self.LogWhen) return; // already running: a boosted page brought the script again
  const $ = (sel, root = document) => root.querySelector(sel);
  const say = (el, text, kind = "info") => {
    if (!el) return;
    el.textContent = text;
    el.className = `${el.className.split(" ")[0]}${text ? ` flash flash-${kind}` : ""}`;
  };
  const REASONS = {
    1: "Location is blocked for this site: allow it in the browser's settings, or give coordinates below.",
    2: "The phone cannot tell where it is right now (no GPS or network fix): try again outside, or give coordinates below.",
    3: "Finding the position took too long: try again, or give coordinates below.",
  };
  const fixed = (n) => String(Math.round(n * 1e6) / 1e6);

  // One position, or a rejection with the words to show.
  const where = () => new Promise((resolve, reject) => {
    if (!navigator.geolocation) {
      reject(new Error("This browser cannot tell where it is: give coordinates below."));
      return;
    }
    navigator.geolocation.getCurrentPosition(
      (p) => resolve(p.coords),
      (e) => reject(new Error(REASONS[e.code] || REASONS[2])),
      { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
  });

  // Nearby: the tap asks for the position, then the form shows who is closest.
  function nearby() {
    const button = $("#locate");
    if (!button) return;
    const status = $("#locate-status");
    if (!button.hidden) return;
    button.hidden = false;
    button.addEventListener("click", async () => {
      button.disabled = true;
      say(status, "Finding where you are…");
      try {
        const c = await where();
        const form = $("#nearby-form");
        form.elements.latitude.value = fixed(c.latitude);
        form.elements.longitude.value = fixed(c.longitude);
        form.elements.accuracy_m.value = Math.round(c.accuracy);
        say(status, "");
        form.requestSubmit();
      } catch (err) {
        say(status, err.message, "error");
      } finally {
        button.disabled = false;
      }
    });
  }

  // A contact's form: "Use my position" fills its coordinates.
  function positionFields() {
    for (const box of document.querySelectorAll("[data-position]")) {
      const button = $("[data-use-position]", box);
      const status = $(".locate-status", box);
      if (!button.hidden) continue;
      button.hidden = false;
      button.addEventListener("click", async () => {
        say(status, "Finding where you are…");
        try {
          const c = await where();
          $('[name="latitude"]', box).value = fixed(c.latitude);
          $('[name="longitude"]', box).value = fixed(c.longitude);
          say(status, `Filled in (give or take ${Math.round(c.accuracy)} m).`, "success");
        } catch (err) {
          say(status, err.message, "error");
        }
      });
    }
  }

  // Check-in: the position at the tap goes with the visit, through the outbox when the
  // phone has one (so it works with no signal), else as the plain form.
  async function checkIn(form) {
    const status = $(".check-in-status", form);
    const button = $("button", form);
    button.disabled = true;
    const at = new Date().toISOString();
    say(status, "Finding where you are…");
    let c = null;
    let why = "";
    try {
      c = await where();
    } catch (err) {
      why = err.message.split(":")[0];
    }
    if (c) {
      form.elements.latitude.value = fixed(c.latitude);
      form.elements.longitude.value = fixed(c.longitude);
      form.elements.accuracy_m.value = Math.round(c.accuracy);
    }
    const O = self.Offline;
    const user = Number(($('meta[name="user-id"]') || {}).content) || null;
    if (!O || !self.indexedDB || !user) return form.submit();
    const entry = {
      uuid: form.elements.uuid.value, userId: user, contactId: Number(form.dataset.contactId),
      contactName: form.dataset.contactName, author: form.dataset.author, kind: "visit", body: "",
      occurredAt: at,
      ...(c ? { latitude: c.latitude, longitude: c.longitude, accuracy: Math.round(c.accuracy) } : {}),
    };
    try {
      await O.add(entry);
    } catch {
      return form.submit();
    }
    const without = c ? "" : ` without a position (${why})`;
    say(status, `Check-in saved on this phone${without}; sending…`);
    if (navigator.onLine) await O.flush().catch(() => {});
    const left = (await O.entries()).find((e) => e.uuid === entry.uuid);
    if (!left) return location.reload();
    button.disabled = false;
    form.elements.uuid.value = crypto.randomUUID ? crypto.randomUUID() : form.elements.uuid.value;
    say(status, left.state === "failed" ? `Not checked in: ${left.error}`
      : `Checked in on this phone${without}; it will be sent when there is signal.`, left.state === "failed" ? "error" : "info");
  }

  window.addEventListener("submit", (evt) => {
    if (!evt.target.matches("form.check-in-form")) return;
    // Before htmx and the outbox script see it: this form has its own way out.
    evt.preventDefault();
    evt.stopPropagation();
    checkIn(evt.target);
  }, true);

  // The log form's time: the phone's offset for the server, and the moment for the outbox.
  const AGO = { now: 0, "15m": 15, "30m": 30, "1h": 60, "2h": 120, "4h": 240, yesterday: 1440 };
  self.LogWhen = (form) => {
    const choice = form.elements.when ? form.elements.when.value : "now";
    if (choice in AGO) return new Date(Date.now() - AGO[choice] * 6e4).toISOString();
    const at = form.elements.at && form.elements.at.value;
    const d = at ? new Date(at) : null;
    return d && !Number.isNaN(d.getTime()) ? d.toISOString() : null;
  };
  const offsets = () => {
    for (const tz of document.querySelectorAll('input[name="tz"]')) tz.value = new Date().getTimezoneOffset();
  };
  // The offset on the day given, which daylight saving may make another than today's.
  document.addEventListener("submit", (evt) => {
    const { at, tz } = evt.target.elements;
    const d = at && at.value ? new Date(at.value) : null;
    if (tz && d && !Number.isNaN(d.getTime())) tz.value = d.getTimezoneOffset();
  }, true);

  // Pages reached by boosted links are swapped in: each swap may bring a button to wire.
  const start = () => { nearby(); positionFields(); offsets(); };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
  document.addEventListener("htmx:after:swap", start);
})();
