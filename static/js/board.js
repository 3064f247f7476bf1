/* The board: drag a card by its handle (pointer events; touch-action: none on the handle
   only, so a swipe scrolls), or arrow keys on a focused handle. See templates/deals/. */
(() => {
  "use strict";
  document.documentElement.classList.add("board-on");
  if (window.boardReady) return;
  window.boardReady = true;
  const $ = (sel, root = document) => root.querySelector(sel);
  const cardOf = (el) => el && el.closest(".deal-card");
  const cards = (list) => [...list.children].filter((c) => c.matches(".deal-card:not(.dragging)"));
  const say = (text) => { const s = $("#board-status"); if (s) s.textContent = text; };
  const title = (card) => $(".deal-title", card).textContent;
  // The server sends the new count and totals of each column a move touched.
  const sums = (html) => {
    for (const fresh of new DOMParser().parseFromString(html, "text/html").querySelectorAll(".column-sum[data-stage]")) {
      const old = $(`.column[data-stage="${fresh.dataset.stage}"] .column-sum`);
      if (old) old.replaceWith(document.adoptNode(fresh));
    }
  };
  const mine = () => new URLSearchParams(location.search).get("mine") || "";

  async function send(card, url, fields) {
    const form = $(".stage-pick", card);
    const body = new FormData(form);
    for (const [k, v] of Object.entries(fields)) body.set(k, v == null ? "" : v);
    const response = await fetch(url || form.action, {
      method: "POST", body, credentials: "same-origin",
      headers: { "HX-Request": "true", "X-CSRFToken": ($('meta[name="csrf-token"]') || {}).content || "" },
    });
    const text = await response.text();
    if (!response.ok) {
      const doc = new DOMParser().parseFromString(text, "text/html");
      throw new Error((doc.body.textContent || "The move was refused.").trim());
    }
    return text;
  }

  async function commit(card, origin) {
    const list = card.parentElement;
    const prev = card.previousElementSibling, next = card.nextElementSibling;
    const fields = {
      stage_id: list.dataset.stage, from_stage: card.dataset.stage, mine: mine(),
      prev_id: prev && prev.matches(".deal-card") ? prev.dataset.id : "",
      next_id: next && next.matches(".deal-card") ? next.dataset.id : "",
    };
    try {
      const html = await send(card, null, fields);
      const fresh = new DOMParser().parseFromString(html, "text/html").body.firstElementChild;
      sums(html);
      card.replaceWith(fresh);
      say(`Moved ${title(fresh)} to ${$("h2", list.closest(".column")).textContent}.`);
      return fresh;
    } catch (err) {
      origin.list.insertBefore(card, origin.next);
      say(err.message);
      return card;
    }
  }

  async function close(card, zone, origin) {
    origin.list.insertBefore(card, origin.next);
    if (zone.dataset.kind === "lost") {
      window.location.assign(`/deals/${card.dataset.id}/lose`);
      return;
    }
    try {
      sums(await send(card, `/deals/${card.dataset.id}/win`, { mine: mine() }));
      say(`Won: ${title(card)}.`);
      card.remove();
    } catch (err) { say(err.message); }
  }

  let drag = null;
  document.addEventListener("pointerdown", (evt) => {
    const handle = evt.target.closest(".deal-handle");
    if (!handle || evt.button !== 0 || drag) return;
    const card = cardOf(handle), box = card.getBoundingClientRect();
    evt.preventDefault();
    handle.setPointerCapture(evt.pointerId);
    const hole = document.createElement("li");
    hole.className = "drop-placeholder";
    hole.style.height = `${box.height}px`;
    drag = { card, handle, hole, dx: evt.clientX - box.left, dy: evt.clientY - box.top,
      origin: { list: card.parentElement, next: card.nextElementSibling }, zone: null };
    card.after(hole);
    document.documentElement.classList.add("deal-dragging");
    card.classList.add("dragging");
    card.style.width = `${box.width}px`;
    place(evt);
  });

  function place(evt) {
    const { card, hole } = drag;
    card.style.left = `${evt.clientX - drag.dx}px`;
    card.style.top = `${evt.clientY - drag.dy}px`;
    const under = document.elementFromPoint(evt.clientX, evt.clientY);
    const zone = under && under.closest(".drop-zone");
    document.querySelectorAll(".over").forEach((el) => el.classList.remove("over"));
    drag.zone = zone;
    if (zone) { zone.classList.add("over"); return; }
    const column = under && under.closest(".column");
    const list = column && $(".cards", column);
    if (!list) return;
    column.classList.add("over");
    const before = cards(list).find((c) => {
      const r = c.getBoundingClientRect();
      return evt.clientY < r.top + r.height / 2;
    });
    list.insertBefore(hole, before || $(".more", list));
  }

  document.addEventListener("pointermove", (evt) => { if (drag) place(evt); });

  function end(evt, cancelled) {
    if (!drag) return;
    const { card, hole, origin, zone } = drag;
    drag = null;
    document.documentElement.classList.remove("deal-dragging");
    document.querySelectorAll(".over").forEach((el) => el.classList.remove("over"));
    card.classList.remove("dragging");
    card.style.cssText = "";
    if (cancelled) { hole.remove(); return; }
    if (zone) { hole.remove(); close(card, zone, origin); return; }
    hole.replaceWith(card);
    if (card.parentElement === origin.list && card.nextElementSibling === origin.next) return;
    commit(card, origin).then((c) => $(".deal-handle", c).focus());
  }
  document.addEventListener("pointerup", (evt) => end(evt, false));
  document.addEventListener("pointercancel", (evt) => end(evt, true));

  document.addEventListener("keydown", async (evt) => {
    const handle = evt.target.closest && evt.target.closest(".deal-handle");
    if (!handle || drag) return;
    const card = cardOf(handle), list = card.parentElement;
    const origin = { list, next: card.nextElementSibling };
    const lists = [...document.querySelectorAll("#board .cards")];
    const at = lists.indexOf(list);
    if (evt.key === "ArrowUp" || evt.key === "ArrowDown") {
      const siblings = cards(list), i = siblings.indexOf(card);
      const j = evt.key === "ArrowUp" ? i - 1 : i + 1;
      if (j < 0 || j >= siblings.length) return;
      evt.preventDefault();
      if (evt.key === "ArrowUp") siblings[j].before(card); else siblings[j].after(card);
    } else if (evt.key === "ArrowLeft" || evt.key === "ArrowRight") {
      const target = lists[evt.key === "ArrowLeft" ? at - 1 : at + 1];
      if (!target) return;
      evt.preventDefault();
      target.prepend(card);
    } else return;
    const moved = await commit(card, origin);
    $(".deal-handle", moved).focus();
  });
})();
