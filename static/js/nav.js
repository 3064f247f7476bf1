/* Field CRM page moves: the CSRF header on every htmx request, and back to a long list
   as far as it was loaded and scrolled. */
(() => {
  "use strict";
  const { $ } = self.Dom;

  // A part of the page that needs a script of its own loads it when first opened
  // (the quick add's "Use my position"), so the list's first load stays light.
  document.addEventListener("toggle", (evt) => {
    const src = evt.target.open && evt.target.dataset && evt.target.dataset.script;
    if (src && !$(`script[src="${src}"]`)) document.head.append(Object.assign(document.createElement("script"), { src }));
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
