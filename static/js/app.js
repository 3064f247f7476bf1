/* Field CRM page script: CSRF header on htmx requests, the service worker, and a way
   out to the offline page when a boosted link cannot reach the server. */
(() => {
  "use strict";

  document.addEventListener("htmx:config:request", (evt) => {
    const meta = document.querySelector('meta[name="csrf-token"]');
    if (meta) evt.detail.ctx.request.headers["X-CSRFToken"] = meta.content;
  });

  // No answer at all (no signal) to a whole-page request (a boosted link, or Back):
  // navigate for real, so the service worker can serve its cached copy or the offline
  // page instead of leaving the tap unanswered. Fragments (search, scrolling) stay put.
  document.addEventListener("htmx:error", (evt) => {
    const ctx = evt.detail && evt.detail.ctx;
    const req = ctx && ctx.request;
    if (req && !ctx.response && req.method === "GET" && req.headers["HX-Request-Type"] === "full") {
      window.location.href = req.action;
    }
  });

  // Times come from the server in UTC; show them in the phone's own zone and language.
  const local = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  const localTimes = () => {
    for (const t of document.querySelectorAll("time[datetime]:not([data-local])")) {
      t.textContent = local.format(new Date(t.dateTime));
      t.dataset.local = "";
    }
  };
  document.addEventListener("DOMContentLoaded", localTimes);
  document.addEventListener("htmx:after:swap", localTimes);

  if ("serviceWorker" in navigator) {
    window.addEventListener("load", () => {
      navigator.serviceWorker.register("/sw.js").catch(() => {});
    });
  }
})();
