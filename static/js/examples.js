// The example list: check boxes for bulk actions, clean URLs for filters, and 400s (a bad
// filter value) shown in place. Loaded with defer; no inline script (the CSP forbids it).
"use strict";

document.addEventListener("change", (event) => {
  const box = event.target;
  if (!(box instanceof HTMLInputElement)) return;
  if (box.id === "check-page" || box.id === "select-all-matching") {
    document.querySelectorAll("#results input[name=ids]").forEach((row) => {
      row.checked = box.checked;
    });
    if (box.id === "select-all-matching") {
      const page = document.getElementById("check-page");
      if (page) page.checked = box.checked;
    }
  }
  if (box.name === "ids" && !box.checked) {
    const all = document.getElementById("select-all-matching");
    if (all) all.checked = false;
  }
});

// The filter form's empty fields stay out of the URL it pushes.
document.addEventListener("htmx:configRequest", (event) => {
  if (event.detail.elt.id !== "filters") return;
  const params = event.detail.parameters;
  for (const [name, value] of Array.from(params.entries())) {
    if (value === "" || (name === "duplicates" && value === "include")) params.delete(name);
  }
});

// A 400 from the list carries the message naming the bad field: show it.
document.addEventListener("htmx:beforeSwap", (event) => {
  if (event.detail.xhr.status === 400 && event.detail.target.id === "results") {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
