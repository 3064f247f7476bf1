/* The notifications page: turn task reminders on or off for this phone. Permission is
   asked only on a tap (iOS requires it), and where the browser has no Push API the
   page says why (iPhone and iPad: iOS 16.4 or later, from the Home Screen only). */
(() => {
  "use strict";
  if (self.PushPage) return; // loaded once; a boosted visit to the page sets it up again
  self.PushPage = true;
  const setUp = () => {
    const box = document.getElementById("push");
    if (!box || box.dataset.ready) return;
    box.dataset.ready = "1";
    const say = (text) => { document.getElementById("push-status").textContent = text; };
    const on = document.getElementById("push-on");
    const off = document.getElementById("push-off");
    const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
    const post = (url, body) => fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf(), Accept: "application/json" },
      body: JSON.stringify(body),
    });
    const key = () => {
      const b64 = box.dataset.key.replace(/-/g, "+").replace(/_/g, "/");
      const raw = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
      return Uint8Array.from(raw, (c) => c.charCodeAt(0));
    };
    box.hidden = false;
    on.hidden = false;
    if (!("serviceWorker" in navigator) || !self.PushManager || !self.Notification) {
      say("This browser cannot get reminders here. On an iPhone or iPad: iOS 16.4 or later, add Field CRM to the Home Screen (Share, Add to Home Screen) and open it from there. Reminders are always in this list.");
      return;
    }
    const registration = () => navigator.serviceWorker.ready;
    async function state() {
      const sub = await (await registration()).pushManager.getSubscription();
      on.hidden = Boolean(sub);
      off.hidden = !sub;
      if (Notification.permission === "denied") {
        on.hidden = true;
        say("Notifications are blocked for this site: allow them in the browser's settings to get reminders.");
      } else {
        say(sub ? "Reminders are on for this phone." : "Get a notification on this phone when a task is due.");
      }
    }
    on.addEventListener("click", async () => {
      on.disabled = true;
      try {
        if ((await Notification.requestPermission()) !== "granted") return await state();
        const sub = await (await registration()).pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key() });
        const r = await post("/api/push/subscription", sub.toJSON());
        if (!r.ok) {
          await sub.unsubscribe();
          const data = await r.json().catch(() => ({}));
          return say(`Reminders could not be turned on: ${Object.values(data.errors || {}).join(" ") || r.status}`);
        }
        await state();
      } catch (err) {
        say(`Reminders could not be turned on: ${err.message || err}`);
      } finally {
        on.disabled = false;
      }
    });
    off.addEventListener("click", async () => {
      const sub = await (await registration()).pushManager.getSubscription();
      if (sub) {
        await post("/api/push/unsubscribe", { endpoint: sub.endpoint }).catch(() => {});
        await sub.unsubscribe();
      }
      await state();
    });
    state().catch(() => {});
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUp);
  else setUp();
  document.addEventListener("htmx:after:swap", setUp);
})();
