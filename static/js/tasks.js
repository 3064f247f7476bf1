/* Today and the task list: a tap on ✓ ticks the task done through the phone's outbox
   (static/js/offline.js), so it works with no signal and is sent once; the row says
   "Waiting to send" until the server has it, on the live page and on a saved copy. */
(() => {
  "use strict";
  const O = self.Offline;
  if (!O || !self.indexedDB) return; // the forms post as they are (htmx, or plain)
  if (self.TasksPage) return self.TasksPage.show(); // a boosted visit runs this file again
  const userId = () => Number((document.querySelector('meta[name="user-id"]') || {}).content) || null;
  const newId = () => (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`.replace(".", ""));

  const mark = (row, text, state) => {
    row.dataset.sync = state;
    const tag = row.querySelector(".task-state");
    if (tag) tag.textContent = text;
  };

  // Rows of ticks still in the outbox are shown as such; gone from it, as done.
  async function show() {
    const ticks = new Map();
    for (const e of await O.entries()) if (e.kind === "task-done") ticks.set(e.taskId, e);
    for (const row of document.querySelectorAll("li.task[data-task-id]")) {
      const e = ticks.get(Number(row.dataset.taskId));
      if (e) mark(row, e.state === "failed" ? `Not sent: ${e.error}` : "Done · waiting to send", e.state);
      else if (row.dataset.sync) mark(row, "Done", "sent");
    }
  }

  window.addEventListener("submit", async (evt) => {
    const form = evt.target;
    if (!form.matches("form.task-done[data-task-id]")) return;
    evt.preventDefault();
    evt.stopImmediatePropagation(); // neither htmx nor the page's offline note
    const row = form.closest("li");
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      await O.add({
        uuid: newId(),
        userId: userId(),
        kind: "task-done",
        label: "Task done",
        taskId: Number(form.dataset.taskId),
        contactName: form.dataset.title,
        occurredAt: new Date().toISOString(),
      });
    } catch {
      button.disabled = false;
      return mark(row, "This phone could not keep the tick: try again.", "failed");
    }
    row.classList.add("task-ticked");
    await show();
    document.dispatchEvent(new CustomEvent("fieldcrm:queued"));
  }, true);

  const again = () => show().catch(() => {});
  self.TasksPage = { show: again };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", again);
  else again();
  document.addEventListener("htmx:after:swap", again);
  if (self.BroadcastChannel) new BroadcastChannel("fieldcrm-sync").addEventListener("message", again);
})();
