// The console's one module: what plain HTML cannot do alone. Every page works without it.

// Live regions: elements with data-live and an id are re-read from the server whenever the
// event log has something this person may see. Forms are never inside one, so nothing typed
// is lost.
function followEvents() {
  const source = document.body.dataset.events;
  if (!source || !("EventSource" in window)) return;
  let pending = null;
  const refresh = async () => {
    pending = null;
    const regions = document.querySelectorAll("[data-live][id]");
    if (regions.length === 0) return;
    const response = await fetch(location.href, { credentials: "same-origin" });
    if (!response.ok || response.redirected) return;
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    for (const region of regions) {
      const next = fresh.getElementById(region.id);
      if (next) region.replaceWith(document.importNode(next, true));
    }
    setUpTabs();
    document.dispatchEvent(new CustomEvent("console:refreshed"));
  };
  const events = new EventSource(source);
  let last = "";
  events.onmessage = (event) => {
    last = event.lastEventId || last;
    if (pending === null) pending = setTimeout(refresh, 150);
  };
  // A refusal (this node or this person at the cap) closes an EventSource for good; try again
  // later, from the last event seen, rather than stay silent.
  events.onerror = () => {
    if (events.readyState !== EventSource.CLOSED) return;
    setTimeout(() => {
      if (last) document.body.dataset.events = source.replace(/after=[^&]*/, `after=${last}`);
      followEvents();
    }, 30_000);
  };
}

// On a phone the board's columns become tabs; on a PC they stand side by side.
function setUpTabs() {
  const tabs = document.querySelector(".tabs");
  const board = document.querySelector(".board");
  if (!tabs || !board) return;
  const narrow = window.matchMedia("(max-width: 899px)");
  const buttons = [...tabs.querySelectorAll("[role=tab]")];
  const show = (chosen) => {
    for (const button of buttons) {
      const selected = button === chosen;
      button.setAttribute("aria-selected", String(selected));
      button.tabIndex = selected ? 0 : -1;
      const panel = document.getElementById(button.getAttribute("aria-controls"));
      if (panel) panel.hidden = narrow.matches && !selected;
    }
  };
  const apply = () => {
    tabs.hidden = !narrow.matches;
    board.classList.toggle("tabbed", narrow.matches);
    const selected = buttons.find((b) => b.getAttribute("aria-selected") === "true") || buttons[0];
    if (selected) show(selected);
  };
  if (!tabs.dataset.ready) {
    tabs.dataset.ready = "1";
    tabs.addEventListener("click", (event) => {
      const button = event.target.closest("[role=tab]");
      if (button) show(button);
    });
    tabs.addEventListener("keydown", (event) => {
      const at = buttons.indexOf(document.activeElement);
      if (at < 0 || !["ArrowLeft", "ArrowRight"].includes(event.key)) return;
      const next = buttons[(at + (event.key === "ArrowRight" ? 1 : buttons.length - 1)) % buttons.length];
      next.focus();
      show(next);
    });
    narrow.addEventListener("change", apply);
  }
  apply();
}

// A form marked data-auto-submit goes as soon as its choice changes (choosing a category
// shows its custom fields); without script its button does the same.
function autoSubmit() {
  for (const form of document.querySelectorAll("form[data-auto-submit]")) {
    form.addEventListener("change", () => form.requestSubmit());
  }
}

setUpTabs();
autoSubmit();
followEvents();
