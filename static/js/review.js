// Review keyboard shortcuts (shown on the queue page) and review fragments' error swaps.
//   n / p   next unreviewed / previous example (the queue's #queue-next / #queue-prev links)
//   g / v   toggle golden / validated and save the review form
//   j / k   move to the next / previous step (.step elements of the trajectory)
//   b       mark the current step bad (opens its comment box), or unmark it
// Loaded with <script src defer>: the site's CSP allows no inline script.
(function () {
  "use strict";
  function typing(target) {
    return target.closest && target.closest("input, textarea, select, [contenteditable]");
  }

  function follow(selector) {
    var link = document.querySelector(selector);
    if (link && link.href) window.location.assign(link.href);
  }

  function toggle(name) {
    var form = document.querySelector("#review-panel form.review-form");
    if (!form || !form.elements[name]) return;
    form.elements[name].checked = !form.elements[name].checked;
    form.requestSubmit();
  }

  function steps() {
    return Array.prototype.slice.call(document.querySelectorAll(".step[data-step]"));
  }

  function moveStep(delta) {
    var all = steps();
    if (!all.length) return;
    var current = document.querySelector(".step.is-current");
    var index = current ? all.indexOf(current) + delta : delta > 0 ? 0 : all.length - 1;
    index = Math.max(0, Math.min(all.length - 1, index));
    if (current) current.classList.remove("is-current");
    all[index].classList.add("is-current");
    all[index].scrollIntoView({ block: "center", behavior: "smooth" });
  }

  function markStep() {
    var step = document.querySelector(".step.is-current") || steps()[0];
    if (!step) return;
    step.classList.add("is-current");
    var mark = document.getElementById("step-mark-" + step.dataset.step);
    if (!mark) return;
    var unmark = mark.querySelector("form.unmark-form");
    if (unmark) return unmark.requestSubmit();
    var details = mark.querySelector("details.mark-details");
    if (!details) return;
    details.open = true;
    details.querySelector("input[name=comment]").focus();
  }

  var keys = {
    n: function () { follow("#queue-next"); },
    p: function () { follow("#queue-prev"); },
    g: function () { toggle("is_golden"); },
    v: function () { toggle("validated"); },
    j: function () { moveStep(1); },
    k: function () { moveStep(-1); },
    b: markStep,
  };

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    var action = keys[event.key];
    if (!action) return;
    event.preventDefault();
    action();
  });

  // A review form's 400 carries the form with its errors: show it instead of dropping it.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var elt = event.detail.elt;
    if (event.detail.xhr.status === 400 && elt.closest && elt.closest(".review-panel, .step-mark")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
})();
