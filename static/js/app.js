/* Field CRM page script: CSRF header on htmx requests, the service worker, and a way
   out to the offline page when a boosted link cannot reach the server. */
(() => {
  "use strict";

  document.addEventListener("htmx:config:request", (evt) => {
    const meta = document.querySelector('meta[name="csrf-token"]');
    if (meta) evt.detail.ctx.request.headers["X-CSRFToken"] = meta.content;
  });

  // No answer at all (no signal): navigate for real, so the service worker can serve
  // its cached copy or the offline page instead of leaving the tap unanswered.
  document.addEventListener("htmx:error", (evt) => {
    const ctx = evt.detail && evt.detail.ctx;
    if (ctx && !ctx.response && ctx.request && ctx.request.method === "GET" &&
        ctx.sourceElement && ctx.sourceElement.matches("a[href]")) {
      window.location.href = ctx.request.action;
    }
  });

  if ("serviceWorker" in navigator) {
    window.addEventListener("load", () => {
      navigator.serviceWorker.register("/sw.js").catch(() => {});
    });
  }
})();
