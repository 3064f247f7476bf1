/* Field CRM page moves: the CSRF header on every htmx request, back to a long list as
   far as it was loaded and scrolled, the phone's zone for the server, and the unread
   badge counting a reminder pushed while the app is open. */
(() => {
  "use strict";
  const { $ } = self.Dom;

  // The phone's zone, for the server to show and take times in it (a task's due time).
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  if (zone) document.cookie = `tz=${encodeURIComponent(zone)}; path=/; max-age=31536000; SameSite=Lax`;
  const zones = () => {
    for (const input of document.querySelectorAll("input[data-local-zone]")) {
      if (!input.value || !("keep" in input.dataset)) input.value = zone;
    }
  };
  document.addEventListener("DOMContentLoaded", zones);
  document.addEventListener("htmx:after:swap", zones);

  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.addEventListener("message", (evt) => {
      if (!evt.data || evt.data.type !== "push") return;
      for (const link of document.querySelectorAll('a[href="/notifications"]')) {
        const badge = $(".unread-count", link) || link.appendChild(self.Dom.h("span", { className: "unread-count" }));
        badge.textContent = String((Number(badge.textContent) || 0) + 1);
        badge.setAttribute("aria-label", `${badge.textContent} unread`);
      }
    });
  }
  // Scripts of one page, named by the elements that need them ([data-script]; a
  // <details data-script-open> once opened): each loaded into the head once, also on a
  // page reached by a boosted link (htmx 4 merges no head), and never into the body.
  const need = (src) => {
    if (src && !$(`script[src="${src}"]`)) document.head.append(Object.assign(document.createElement("script"), { src }));
  };
  const wanted = () => document.querySelectorAll("[data-script]").forEach((el) => need(el.dataset.script));
  document.addEventListener("DOMContentLoaded", wanted);
  document.addEventListener("htmx:after:swap", wanted);
  document.addEventListener("toggle", (evt) => {
    if (evt.target.open && evt.target.dataset && evt.target.dataset.scriptOpen) need(evt.target.dataset.scriptOpen);
  }, true);

  document.addEventListener("htmx:config:request", (evt) => {
    const meta = document.querySelector('meta[name="csrf-token"]');
    if (meta) evt.detail.ctx.request.headers["X-CSRFToken"] = meta.content;
  });

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
})();
